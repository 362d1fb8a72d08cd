"""`python -m feedback_check`."""

from feedback_check.cli import main

if __name__ == "__main__":
    main()
