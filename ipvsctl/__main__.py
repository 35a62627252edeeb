from ipvsctl.cli import main

main()
