from gymbus.cli import main

main()
