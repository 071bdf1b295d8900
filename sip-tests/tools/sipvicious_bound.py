#!/usr/bin/python3
"""Runs a SIPVicious tool with its sockets bound to $BIND_IP (default 127.0.0.2).

sipvicious 0.3.3 ignores `-b` in svwar and svcrack, so an attacker on another loopback address
is simulated by rebinding every wildcard bind before the tool runs:
    BIND_IP=127.0.0.2 sipvicious_bound.py /usr/bin/svcrack -u 1001 -d dict.txt -p 5060 127.0.0.1
"""
import os
import runpy
import socket
import sys

BIND_IP = os.environ.get("BIND_IP", "127.0.0.2")
_original_bind = socket.socket.bind


def _bind(self, address):
    if isinstance(address, tuple) and address[0] in ("", "0.0.0.0"):
        address = (BIND_IP,) + tuple(address[1:])
    return _original_bind(self, address)


socket.socket.bind = _bind
# The Debian scripts are symlinks into /usr/share/sipvicious, which holds the package.
tool = os.path.realpath(sys.argv[1])
sys.path.insert(0, os.path.dirname(tool))
sys.argv = sys.argv[1:]
runpy.run_path(tool, run_name="__main__")
