from facefix_cli.cli import main

main()
