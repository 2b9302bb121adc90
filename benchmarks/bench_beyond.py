"""Deployment cost of the beyond-the-paper options on the binary hpm hourglass: parameters, packed file
bytes (as `tinybin.packed.pack(net).save` writes them) and the float multiplies per image the
learned spatial / rank-1 scales and PReLU add after the XNOR convolutions.

    python benchmarks/bench_beyond.py            # downscaled (R = F = 64, D = 3), a few seconds
    python benchmarks/bench_beyond.py --paper    # also the paper's scale (R = F = 256, D = 4), minutes
"""
import argparse

from tinybin.beyond import OPTIONS, deployment_costs, format_costs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper", action="store_true", help="also build, pack and save the paper-scale networks")
    a = ap.parse_args()
    print(format_costs(deployment_costs(False, OPTIONS), "Binary hpm, downscaled (R = 64, F = 64, D = 3)"))
    if a.paper:
        print()
        print(format_costs(deployment_costs(True, OPTIONS), "Binary hpm, paper scale (R = 256, F = 256, D = 4)"))


if __name__ == "__main__":
    main()
