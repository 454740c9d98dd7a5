#!/usr/bin/python3
"""dkim_verify.py KEY_TXT SELECTOR < message: verifies the message's DKIM-Signature offline
(python3-dkim) against the public key record that opendkim-genkey wrote to KEY_TXT, published
as SELECTOR._domainkey.example.test. Exit 0 and 'dkim: pass' when it verifies."""
import re
import sys

import dkim

key_txt, selector = sys.argv[1], sys.argv[2]
with open(key_txt) as f:
    record = "".join(re.findall(r'"([^"]*)"', f.read())).replace(" ", "").replace("\t", "")
name = f"{selector}._domainkey.example.test"


def dnsfunc(qname, timeout=5):
    qname = qname.decode() if isinstance(qname, bytes) else qname
    return record.encode() if qname.rstrip(".") == name else None


ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc)
print("dkim: pass" if ok else "dkim: fail")
sys.exit(0 if ok else 1)
