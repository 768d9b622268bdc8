#!/usr/bin/python3
"""Run t/bin/h2streams.py's connections one after another in one process.

Reads one h2streams.py argument (a JSON object) per line on stdin, runs it
exactly as `h2streams.py ARG` would, and prints its JSON output on one line
of stdout; where h2streams.py would exit with a message (a connection or
TLS handshake that fails), prints {"error": "h2streams exit N: message"}.
A start of Python with the h2 package costs about 0.3 s; t/lib/
MisdirectPredict.pm opens hundreds of connections per configuration.
"""

import importlib.util
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location(
    "h2streams", os.path.join(HERE, "h2streams.py"))
H2STREAMS = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(H2STREAMS)


def run(arg):
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv, sys.stdout, sys.stderr
    sys.argv, sys.stdout, sys.stderr = ["h2streams.py", arg], out, err
    code = 0
    try:
        H2STREAMS.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except Exception as e:  # a bug of the client: say so, go on
        code = 1
        err.write("%s: %s\n" % (type(e).__name__, e))
    finally:
        sys.argv, sys.stdout, sys.stderr = saved
    if code:
        return {"error": "h2streams exit %s: %s"
                % (code, err.getvalue().strip())}
    try:
        return json.loads(out.getvalue())
    except ValueError:
        return {"error": "h2streams printed no JSON: %s%s"
                % (out.getvalue(), err.getvalue())}


def main():
    for line in sys.stdin:
        line = line.strip()
        if line:
            sys.stdout.write(json.dumps(run(line)) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
