"""The IPVS generic netlink numbers, as include/uapi/linux/ip_vs.h defines them.

Copied from the kernel's uapi header, which fixes them for every kernel: the
family's name and version, the commands, and the attributes of each nested
kind (service, destination, info), without their IPVS_ prefixes. What the
messages built from them hold is `ipvs_codec`'s business.
"""

GENL_NAME = "IPVS"
GENL_VERSION = 1

# IPVS_CMD_*
CMD_NEW_SERVICE = 1
CMD_SET_SERVICE = 2
CMD_DEL_SERVICE = 3
CMD_GET_SERVICE = 4
CMD_NEW_DEST = 5
CMD_SET_DEST = 6
CMD_DEL_DEST = 7
CMD_GET_DEST = 8
CMD_SET_CONFIG = 12
CMD_GET_CONFIG = 13
CMD_GET_INFO = 15
CMD_FLUSH = 17

# IPVS_CMD_ATTR_*
CMD_ATTR_SERVICE = 1
CMD_ATTR_DEST = 2
CMD_ATTR_TIMEOUT_TCP = 4
CMD_ATTR_TIMEOUT_TCP_FIN = 5
CMD_ATTR_TIMEOUT_UDP = 6

# IPVS_SVC_ATTR_*
SVC_AF = 1
SVC_PROTOCOL = 2
SVC_ADDR = 3
SVC_PORT = 4
SVC_FWMARK = 5
SVC_SCHED_NAME = 6
SVC_FLAGS = 7
SVC_TIMEOUT = 8
SVC_NETMASK = 9
SVC_STATS = 10
SVC_PE_NAME = 11
SVC_STATS64 = 12

# IPVS_DEST_ATTR_*
DEST_ADDR = 1
DEST_PORT = 2
DEST_FWD_METHOD = 3
DEST_WEIGHT = 4
DEST_U_THRESH = 5
DEST_L_THRESH = 6
DEST_ACTIVE_CONNS = 7
DEST_INACT_CONNS = 8
DEST_PERSIST_CONNS = 9
DEST_STATS = 10
DEST_ADDR_FAMILY = 11
DEST_STATS64 = 12
DEST_TUN_TYPE = 13
DEST_TUN_PORT = 14
DEST_TUN_FLAGS = 15

# IPVS_INFO_ATTR_*
INFO_VERSION = 1
INFO_CONN_TAB_SIZE = 2

# IP_VS_CONN_F_FWD_MASK: the forwarding method's bits of a destination's flags
FWD_MASK = 0x7
