"""``python -m sb3_npg``: the ``sb3-npg`` command line."""

from sb3_npg.zoo.cli import main

if __name__ == "__main__":
    main()
