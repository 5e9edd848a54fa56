from bindkit.cli import main

main()
