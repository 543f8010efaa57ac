from fnet.cli import run

run()
