"""The bert-serving client, a drop-in for bert-serving-client 1.10.0.

Needs only numpy and pyzmq (and bert_serving.proto); never imports the server.
Importing it warns, in one line, when a 1.10 `bert-serving-client` or
`-server` shares this environment (see `bert_serving.commands.environment`).

Modules, by idea: `_client` (BertClient), `_concurrent` (ConcurrentBertClient),
`_receiver` (the reply demultiplexer that makes a client thread-safe),
`_assembly` (chunked results into one array), `_input` (checks before sending),
`_errors` (BertClientTimeout; ServerError comes from bert_serving.proto),
`Dual` and `Ids` (a sentence pair, token ids: `encode_inputs`'s rows, from
`bert_serving.proto.inputs`), `_scores` (a classifier's logits as `rerank`
rankings and `predict` labels),
`_sparse` (SPLADE rows as `SparseVector`s).

Usage::

    from bert_serving.client import BertClient

    with BertClient(ip="localhost", port=5555, port_out=5556) as bc:
        vectors = bc.encode(["First do it", "then do it right"])
"""

from __future__ import annotations

import warnings

from bert_serving.commands.environment import legacy_conflict
from bert_serving.proto import PROTOCOL_VERSION
from bert_serving.proto.inputs import Dual, Ids

from ._client import DEFAULT_CHUNK_SIZE, DEFAULT_TIMEOUT_MS, BertClient, Response
from ._concurrent import ConcurrentBertClient
from ._errors import BertClientTimeout, ServerError
from ._scores import Prediction, Rank, predictions, ranked
from ._sparse import SparseVector, to_sparse_vectors

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_TIMEOUT_MS",
    "BertClient",
    "BertClientTimeout",
    "ConcurrentBertClient",
    "Dual",
    "Ids",
    "Prediction",
    "Rank",
    "Response",
    "ServerError",
    "SparseVector",
    "__version__",
    "predictions",
    "ranked",
    "to_sparse_vectors",
]

# The protocol level this client speaks, as 1.10.0's `__version__` was.
__version__ = PROTOCOL_VERSION

if (_conflict := legacy_conflict()) is not None:
    warnings.warn(_conflict, RuntimeWarning, stacklevel=2)
