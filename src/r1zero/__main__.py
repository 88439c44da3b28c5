from r1zero.cli import main

main()
