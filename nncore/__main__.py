"""`python -m nncore info` prints the configuration; `python -m nncore demo` trains the demo."""
import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="nncore", description="nncore command line")
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser("info", help="print version, ISA, OpenMP and thread configuration")
    d = sub.add_parser("demo", help="run the four finance use cases on generated data and compare with NumPy")
    d.add_argument("--samples", type=int, default=20000)
    d.add_argument("--epochs", type=int, default=10)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quick", action="store_true", help="smaller data and fewer epochs")
    args = p.parse_args(argv)
    if args.cmd == "info":
        import nncore
        nncore.show_config()
        return 0
    if args.cmd == "demo":
        from .demo import run
        return run(samples=args.samples, epochs=args.epochs, seed=args.seed, quick=args.quick)
    p.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
