"""Running a sentence-transformers model at the hardware's speed.

Plain ``SentenceTransformer.encode`` tokenizes each small batch in the thread that drives the
model, so a GPU waits on the tokenizer most of the time, and a CPU computes in float32 even
where it has bfloat16 matrix units. :class:`FastEncoder` keeps the model busy instead:

* tokenization runs in worker threads (the Rust tokenizer releases the GIL), chunks ahead of
  the forward pass;
* texts are sorted by length and cut into batches by a *token budget* (rows x padded length),
  so short texts travel in big batches and long ones in small, with little padding;
* on CUDA, token ids go through pinned memory with non-blocking copies;
* the transformer runs in half precision (float16 weights on CUDA; on CPUs with native bf16
  instructions, bfloat16 autocast, which keeps layer norms and softmax in float32), while
  pooling and normalisation run in float32.

The vectors agree with float32 ``encode`` to cosine >= 0.9999 (measured in
``benchmarks/bench_embed.py`` and checked in the tests). Precision is part of the store's
cache key (see :func:`provenance_tag`), so vectors of different precision never mix silently.
"""

from __future__ import annotations

import functools
import os
import queue
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import ModelError, ParameterError

PRECISIONS = ("auto", "float32", "float16", "bfloat16")
BACKENDS = ("torch", "onnx", "openvino")
_SHORT = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
# Characters kept per token of the model's limit before tokenizing: a text this long has far
# more tokens than the model reads, so the rest could only cost time and memory (a 10 MB cell
# would otherwise be tokenized whole before truncation).
_CHARS_PER_TOKEN_CAP = 64


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@functools.cache  # the CPU does not change while we run; /proc/cpuinfo is long on big machines
def cpu_has_bf16() -> bool:
    """True where the CPU computes bfloat16 natively (Intel AMX or AVX-512 BF16); detected
    from the CPU's flags, never assumed. Elsewhere bfloat16 is emulated, slower than float32."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def resolve_precision(precision: str | None, device: str) -> str:
    """``"auto"`` -> float16 on CUDA, bfloat16 on a CPU with native bf16, else float32."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    if precision != "auto":
        if precision == "float16" and device.startswith("cpu"):
            raise ParameterError(
                "float16 is not supported on the CPU (it is emulated and slow); use "
                "precision='bfloat16', 'float32' or 'auto'."
            )
        return precision
    if device.startswith("cuda"):
        return "float16"
    if device.startswith("cpu") and cpu_has_bf16():
        return "bfloat16"
    return "float32"


def provenance_tag(precision: str, backend: str = "torch") -> str:
    """The suffix the store's cache key carries for vectors of this provenance.

    float32 through torch is the reference and carries none (so stores written before
    precision was recorded keep their vectors); anything else is tagged, e.g. ``#bf16`` or
    ``#onnx-fp32``, so a corpus is never silently a mix of precisions.
    """
    short = _SHORT[precision]
    if backend == "torch":
        return "" if precision == "float32" else "#" + short
    return f"#{backend}-{short}"


class _Tokenize:
    """Token ids for a chunk of texts, padded to the chunk's longest, plus lengths and a
    truncation flag per text. Holds its own copy of the tokenizer (safe across threads)."""

    def __init__(self, tokenizer_json: str, max_length: int, pad_id: int = 0):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_str(tokenizer_json)
        self.tok.no_padding()
        self.tok.enable_truncation(max_length)
        self.max_length = max_length
        self.max_chars = max_length * _CHARS_PER_TOKEN_CAP
        self.pad_id = pad_id

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
        cap, limit = self.max_chars, self.max_length
        capped = [t if len(t) <= cap else t[:cap] for t in texts]
        # encode_batch_fast skips character offsets, which we do not need (same ids)
        encode = getattr(self.tok, "encode_batch_fast", self.tok.encode_batch)
        encs = encode(capped)
        rows = [e.ids for e in encs]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        truncated = sum(
            1 for t, e, n in zip(texts, encs, lengths) if len(t) > cap or (n >= limit and e.overflowing)
        )
        ids = np.full((len(rows), int(lengths.max(initial=1))), self.pad_id, dtype=np.int64)
        for row, r in zip(ids, rows):
            row[: len(r)] = r
        return ids, lengths, truncated


def _serve() -> None:
    """A tokenizer worker process: reads length-prefixed pickles of texts on stdin, answers
    with the same for ``_Tokenize``'s result on stdout. Started by :class:`_TokenizerProcesses`."""
    import pickle
    import sys

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the parent's pipe
    tokenize = None
    while header := stdin.read(8):
        message = pickle.loads(stdin.read(int.from_bytes(header, "little")))
        if tokenize is None:
            tokenize = _Tokenize(*message)  # (tokenizer JSON, max length, pad id)
            continue
        answer = pickle.dumps(tokenize(message), protocol=5)
        stdout.write(len(answer).to_bytes(8, "little") + answer)
        stdout.flush()


class _TokenizerProcesses:
    """Tokenization in worker processes (plain subprocesses, so no ``__main__`` guard is asked
    of the caller's script, and nothing is forked from a process that holds a GPU)."""

    def __init__(self, n: int, tokenize: _Tokenize):
        import pickle
        import subprocess
        import sys

        package_root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
        }
        setup = pickle.dumps((tokenize.tok.to_str(), tokenize.max_length, tokenize.pad_id))
        self.idle: queue.Queue = queue.Queue()
        self.procs = []
        for _ in range(n):
            proc = subprocess.Popen(
                [sys.executable, "-c", "from analytics.inference import _serve; _serve()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            proc.stdin.write(len(setup).to_bytes(8, "little") + setup)
            proc.stdin.flush()
            self.procs.append(proc)
            self.idle.put(proc)
        self.threads = ThreadPoolExecutor(n, thread_name_prefix="tokenize-io")

    def _roundtrip(self, texts: list[str]):
        import pickle

        proc = self.idle.get()
        try:
            data = pickle.dumps(texts, protocol=5)
            proc.stdin.write(len(data).to_bytes(8, "little") + data)
            proc.stdin.flush()
            header = proc.stdout.read(8)
            if len(header) < 8:
                raise RuntimeError("A tokenizer worker process ended unexpectedly.")
            return pickle.loads(proc.stdout.read(int.from_bytes(header, "little")))
        finally:
            self.idle.put(proc)

    def submit(self, texts: list[str]):
        return self.threads.submit(self._roundtrip, texts)

    def shutdown(self, wait: bool = False, cancel_futures: bool = True) -> None:
        self.threads.shutdown(wait=wait, cancel_futures=cancel_futures)
        for proc in self.procs:
            try:
                proc.stdin.close()
            except OSError:
                pass


def embedding_dimension(model) -> int:
    """The model's vector size, under the method name of either sentence-transformers API."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def _pad_id(hf_tokenizer) -> int:
    pad = getattr(hf_tokenizer, "pad_token_id", None)
    return int(pad) if pad is not None else 0


class FastEncoder:
    """Encode texts with a loaded ``SentenceTransformer`` at the hardware's speed.

    Parameters
    ----------
    model : a loaded SentenceTransformer whose first module is a text transformer. Its first
        module is cast to ``precision`` in place; the other modules stay float32.
    precision : ``"auto"``, ``"float32"``, ``"float16"`` (CUDA) or ``"bfloat16"``.
    token_budget : most tokens (rows x padded length) in one forward pass; default 65,536 on
        CUDA, 8,192 on CPU.
    max_batch : most rows in one forward pass.
    workers : tokenizer threads; default 8 on CUDA (bounded by the cores), 1 on CPU, where the
        forward pass already uses every core.
    processes : tokenizer processes instead of threads (default on CUDA with 8 or more cores:
        cores - 4; else 0). On an H200 with 16 cores, threads top out near 36,000 texts/s.
    chunk : texts per tokenization job.
    cast_weights : cast the transformer's weights to ``precision`` (default on CUDA) rather than
        autocast matrix products with float32 weights (default on CPU: bfloat16 weights alone
        lose too much in layer norms, cosine 0.99990 vs 0.99997 to float32).
    """

    def __init__(
        self,
        model,
        *,
        precision: str = "auto",
        token_budget: int | None = None,
        max_batch: int | None = None,
        workers: int | None = None,
        chunk: int = 2048,
        processes: int | None = None,
        cast_weights: bool | None = None,
    ):
        import torch

        self.model = model
        self.device = torch.device(model.device)
        self.cuda = self.device.type == "cuda"
        self.precision = resolve_precision(precision, self.device.type)
        self.dtype = getattr(torch, self.precision)
        modules = list(model.children()) if hasattr(model, "children") else []
        if not modules or not hasattr(modules[0], "model") or getattr(model, "tokenizer", None) is None:
            raise ModelError(
                "FastEncoder needs a text model whose first module is a transformer "
                "with a tokenizer; use SentenceTransformer.encode for this model."
            )
        self.transformer, self.heads = modules[0], modules[1:]
        if cast_weights is None:
            cast_weights = self.cuda
        self.autocast = None
        if self.precision != "float32":
            if cast_weights:
                self.transformer.to(self.dtype)
            else:
                self.autocast = self.dtype
        self.max_length = int(model.max_seq_length)
        backend = getattr(model.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ModelError("FastEncoder needs a fast (Rust) tokenizer; this model has a slow one.")
        self._tokenize = _Tokenize(backend.to_str(), self.max_length, _pad_id(model.tokenizer))
        self.token_budget = int(token_budget or (65_536 if self.cuda else 8_192))
        self.max_batch = int(max_batch or (1024 if self.cuda else 256))
        self.workers = int(workers or (min(8, os.cpu_count() or 1) if self.cuda else 1))
        cores = os.cpu_count() or 1
        if processes is None:
            processes = max(0, cores - 4) if (self.cuda and cores >= 8) else 0
        self.processes = int(processes)
        self.chunk = int(chunk)
        self._executor = None
        self._submit = None
        self.last_truncated = 0
        """How many texts of the last :meth:`encode` call were longer than the model reads."""

    # -- batching -------------------------------------------------------------------------------

    def _batches(self, lengths: np.ndarray):
        """Row groups (indices into the chunk, longest first) that fit the token budget."""
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            longest = int(lengths[order[start]])
            rows = max(1, min(self.max_batch, self.token_budget // max(longest, 1)))
            yield order[start : start + rows], longest
            start += rows

    def _pool(self):
        """The tokenizer workers, started once and kept: threads, or (``processes`` > 0)
        processes, which escape the GIL that the threads still share for part of the work."""
        import weakref

        if self._executor is None:
            if self.processes > 0:
                self._executor = _TokenizerProcesses(self.processes, self._tokenize)
                self._submit = self._executor.submit
            else:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="tokenize")
                self._submit = lambda texts: self._executor.submit(self._tokenize, texts)
            weakref.finalize(self, self._executor.shutdown, wait=False, cancel_futures=True)
        return self._submit

    def _spans(self, n_texts: int, order: list[int]):
        """Chunks of the length-sorted order: small first, so the model starts early, then
        doubling up to ``chunk``."""
        size, start = min(256, self.chunk), 0
        while start < n_texts:
            yield order[start : start + size]
            start += size
            size = min(size * 2, self.chunk)

    def _chunks(self, texts: list[str]):
        """(positions, ids, lengths, truncated) per chunk, tokenized ahead by the workers."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        spans = list(self._spans(len(texts), order))
        if (self.workers <= 1 and self.processes <= 0) or len(spans) <= 1:
            for span in spans:
                yield (np.asarray(span), *self._tokenize([texts[i] for i in span]))
            return
        submit = self._pool()
        in_flight = max(self.workers, self.processes) + 1
        ahead: queue.Queue = queue.Queue()
        it = iter(spans)
        for span in it:
            ahead.put((span, submit([texts[i] for i in span])))
            if ahead.qsize() >= in_flight:
                break
        while not ahead.empty():
            span, fut = ahead.get()
            nxt = next(it, None)
            if nxt is not None:
                ahead.put((nxt, submit([texts[i] for i in nxt])))
            yield (np.asarray(span), *fut.result())

    # -- forward --------------------------------------------------------------------------------

    def _forward(self, ids_np: np.ndarray, lengths_np: np.ndarray):
        import torch

        ids = torch.from_numpy(ids_np)
        lengths = torch.from_numpy(lengths_np)
        if self.cuda:
            ids = ids.pin_memory().to(self.device, non_blocking=True)
            lengths = lengths.pin_memory().to(self.device, non_blocking=True)
        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]).long()
        features = {"input_ids": ids, "attention_mask": mask}
        features = self.transformer(features)
        features["token_embeddings"] = features["token_embeddings"].float()
        for head in self.heads:
            features = head(features)
        emb = features["sentence_embedding"].float()
        return torch.nn.functional.normalize(emb, dim=1)

    def _context(self):
        """inference mode, plus autocast where the precision asks for it; entered per batch, so
        nothing leaks into the caller's code between the batches of :meth:`iter_encode`."""
        import contextlib

        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.autocast is not None:
            stack.enter_context(torch.autocast(self.device.type, dtype=self.autocast))
        return stack

    def iter_encode(self, texts: list[str]):
        """Yield ``(positions, vectors)`` batch by batch (positions index ``texts``; vectors are
        float32 unit rows on the model's device). Lets a caller write results while the model
        works on the next batch."""
        self.last_truncated = 0
        for positions, ids, lengths, truncated in self._chunks(list(texts)):
            self.last_truncated += truncated
            for rows, longest in self._batches(lengths):
                with self._context():
                    vectors = self._forward(ids[rows, :longest], lengths[rows])
                yield positions[rows], vectors

    def encode(self, texts) -> np.ndarray:
        """(n, dim) float32 with unit rows, in the order of ``texts``."""
        import torch

        texts = list(texts)
        dim = embedding_dimension(self.model)
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        with torch.inference_mode():
            out = torch.empty((len(texts), dim), dtype=torch.float32, device=self.device)
            for positions, vectors in self.iter_encode(texts):
                out[torch.from_numpy(positions).to(self.device)] = vectors
            return out.cpu().numpy()
