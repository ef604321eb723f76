from cfspec.cli import main

main()
