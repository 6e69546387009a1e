"""Runs INSIDE a venv holding only the unmodified bert-serving-client==1.10.0 from PyPI.

Prints one JSON document with what the old client got, for the test to check.
Usage: python legacy_client_script.py PORT PORT_OUT TEXTS_JSON [TOKENS_JSON]

TOKENS_JSON: the pre-tokenized text to send (default ["hello", "world"]); a vocabulary
without an unknown token (byte-level BPE without <unk>) refuses tokens it lacks.
"""

import json
import sys

import numpy as np

from bert_serving.client import BertClient

port, port_out, texts = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
words = json.loads(sys.argv[4]) if len(sys.argv) > 4 else ["hello", "world"]
out = {}
bc = BertClient(port=port, port_out=port_out, timeout=60000)  # defaults otherwise
out["encode"] = bc.encode(texts).tolist()
vectors, tokens = bc.encode(texts[:2], show_tokens=True)
out["show_tokens"] = tokens
out["tokenized"] = bc.encode([words], is_tokenized=True).tolist()
bc.encode(texts[:3], blocking=False)
bc.encode(texts[3:5], blocking=False)
out["async"] = np.concatenate(bc.fetch_all(sort=True)).tolist()
out["encode_async"] = [r.embedding.tolist() for r in bc.encode_async(iter([texts[:2], texts[2:4]]),
                                                           max_num_batch=2)]
out["config"] = bc.server_config
out["status"] = bc.server_status
try:
    bc._send(b'["ok", 3]', 2)  # a bad payload, as a buggy caller could send
    bc._recv_ndarray()
    out["bad"] = "no error"
except Exception as error:  # the old client must fail fast, quoting the server
    out["bad"] = f"{type(error).__name__}: {error}"
print(json.dumps(out))
