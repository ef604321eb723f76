"""`python cli.py ...` at the repository root does what `cfspec ...` does."""

from cfspec.cli import main

if __name__ == "__main__":
    main()
