from closeflow.cli import main

main()
