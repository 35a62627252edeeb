"""`ipvsctl show`: ipvsadm's listing, order and argument rules as pure functions."""
