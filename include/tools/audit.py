"""``make audit``: pip-audit over the runtime lock, reported in a few lines.

Fails (exit 1) when a pinned package has a known vulnerability, naming it, its advisory and the fixed
versions. Packages the vulnerability service could not answer for are counted and named in one warning line
(a registry mirror that serves only the simple index answers none): the audit says what it could not check
rather than pass as if it had.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.txt"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        proc = subprocess.run(  # noqa: S603 - our own venv's pip-audit on our own lock file
            [
                str(Path(sys.executable).with_name("pip-audit")),
                "--disable-pip",
                "--require-hashes",
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(report),
                "-r",
                str(LOCK),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if not report.exists():
            sys.stderr.write(proc.stdout + proc.stderr)
            print(f"==> pip-audit could not run (exit {proc.returncode}): see above")
            return 1
        data = json.loads(report.read_text())
    packages = data.get("dependencies", [])
    vulnerable = [p for p in packages if p.get("vulns")]
    skipped = [p for p in packages if p.get("skip_reason")]
    audited = len(packages) - len(skipped)
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            print(f"VULNERABLE {package['name']}=={package['version']}: {vuln['id']} (fixed in {fixed})")
    print(
        f"==> pip-audit of {LOCK.name}: {len(packages)} packages, {audited} audited, "
        f"{len(vulnerable)} with known vulnerabilities"
    )
    if skipped:
        names = ", ".join(p["name"] for p in skipped[:5]) + (" …" if len(skipped) > 5 else "")
        print(
            f"WARNING: {len(skipped)} package(s) could not be audited ({names}): "
            f"{skipped[0]['skip_reason']}. The vulnerability service (PyPI's JSON API) did not answer for "
            "them; run `make audit` where it does."
        )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
