#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image; the zip's contents are in
# /autograder/source. Choose Gradescope's Ubuntu 24.04 base image: the pinned numpy needs Python >= 3.11.
set -euo pipefail
cd /autograder/source
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# bubblewrap is the sandbox around every process that runs submitted code; util-linux gives setpriv and
# unshare, with which the grader (root) runs bwrap as `nobody`.
apt-get install -y -qq python3 python3-venv python3-pip bubblewrap util-linux >/dev/null
# The venv lives outside /autograder: the sandbox hides /autograder/source from submissions, and the
# sandboxed child (uid nobody) must be able to read the interpreter and the packages.
python3 -m venv /opt/ganlab-venv
/opt/ganlab-venv/bin/pip install -q --upgrade pip
# CPU wheels of torch are a fraction of the size of the CUDA ones; `torch==X` in constraints.txt also
# matches `X+cpu`. If the CPU index does not have the pinned pair, fall back to the default index.
/opt/ganlab-venv/bin/pip install -q -c constraints.txt --extra-index-url "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" . \
  || /opt/ganlab-venv/bin/pip install -q -c constraints.txt .
chmod -R a+rX /opt/ganlab-venv
/opt/ganlab-venv/bin/ganlab-grade --help >/dev/null
# Fail the image build, with the reason, if this container cannot run the sandbox (no user namespaces, say):
# better a failed build than an autograder that refuses every submission.
/opt/ganlab-venv/bin/python -c 'from ganlab.sandbox import sandbox_problem as p; import sys; sys.exit(p())'
echo "ganlab autograder installed for lab $(cat LAB)"
