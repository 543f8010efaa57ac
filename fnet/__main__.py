from fnet.cli import main

main()
