"""Add the license of a bundled runtime to a repaired wheel (as scikit-learn ships the
GCC Runtime Library Exception with the libgomp its wheels carry).

    python tools/add_wheel_license.py WHEEL LICENSE_FILE [--as NAME]   (WHEEL may be a glob)

Writes LICENSE_FILE into WHEEL's <name>.dist-info/licenses/ (default name: the file's own name),
records it in RECORD with its sha256, and lists it as a License-File in METADATA. Rewrites the
wheel in place (atomically); running it twice is harmless. Standard library only, so it runs
as a cibuildwheel repair step on every platform.
"""
import argparse
import base64
import csv
import glob
import hashlib
import io
import os
import sys
import zipfile


def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def add_license(wheel, license_path, name=None):
    name = name or os.path.basename(license_path)
    with open(license_path, "rb") as f:
        payload = f.read()
    with zipfile.ZipFile(wheel) as zin:
        infos = zin.infolist()
        dist_info = {i.filename.split("/")[0] for i in infos if i.filename.split("/")[0].endswith(".dist-info")}
        if len(dist_info) != 1:
            raise SystemExit(f"{wheel}: expected one .dist-info directory, found {sorted(dist_info)}")
        dist_info = dist_info.pop()
        target = f"{dist_info}/licenses/{name}"
        record_name = f"{dist_info}/RECORD"
        meta_name = f"{dist_info}/METADATA"
        files = {i.filename: zin.read(i.filename) for i in infos}
        order = [i.filename for i in infos]
    files[target] = payload
    if target not in order:
        order.insert(order.index(record_name), target)
    meta = files[meta_name].decode("utf-8")
    line = f"License-File: licenses/{name}" if "License-File: licenses/" in meta else f"License-File: {name}"
    if line not in meta:
        head, sep, body = meta.partition("\n\n")
        files[meta_name] = (head + "\n" + line + sep + body).encode("utf-8")
    # RECORD: every file but RECORD itself with its hash and size
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for fn in order:
        if fn == record_name:
            continue
        writer.writerow([fn, _digest(files[fn]), len(files[fn])])
    writer.writerow([record_name, "", ""])
    files[record_name] = out.getvalue().encode("utf-8")
    tmp = wheel + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for fn in order:
            zout.writestr(fn, files[fn])
    os.replace(tmp, wheel)
    return target


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel")
    p.add_argument("license")
    p.add_argument("--as", dest="name", default=None, help="file name inside the wheel")
    a = p.parse_args(argv)
    wheels = sorted(glob.glob(a.wheel)) if any(c in a.wheel for c in "*?[") else [a.wheel]  # cmd.exe has no globbing
    if not wheels:
        raise SystemExit(f"no wheel matches {a.wheel}")
    for w in wheels:
        print(f"{w}: added {add_license(w, a.license, a.name)}")


if __name__ == "__main__":
    sys.exit(main())
