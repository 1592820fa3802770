"""Upload: bring a corpus in (or the bundled sample), manage corpora, split one by a column."""

import signin
import streamlit as st
from common import delete_corpus, plain, rename_corpus, store

from analytics import CorpusError, ExplorerError, StoreError
from analytics.sample import add_sample
from analytics.tables import metadata_columns, split_corpus
from analytics.uploads import content_hash, upload_cache


def share_upload_bytes() -> None:
    """Make the UploadedFile that st.file_uploader hands each rerun share the upload's bytes.

    Streamlit returns a deepcopy of a widget's value on every rerun, and BytesIO's deepcopy
    copies its whole buffer: a 190 MB upload was held twice while the page ran (measured with
    tracemalloc; streamlit/streamlit#9218). The copy made here shares the immutable bytes as
    UploadedFile's own constructor does (BytesIO copy-on-write: a write to it copies first), so
    it is as independent of the stored file as Streamlit's. Left alone when Streamlit defines
    a ``__deepcopy__`` of its own."""
    import copy

    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    if "__deepcopy__" in vars(UploadedFile):
        return

    def __deepcopy__(self, memo):
        rec = UploadedFileRec(file_id=self.file_id, name=self.name, type=self.type, data=self.getvalue())
        twin = UploadedFile(rec, copy.deepcopy(self._file_urls, memo))
        twin.seek(self.tell())
        return twin

    UploadedFile.__deepcopy__ = __deepcopy__


def upload_digest(file) -> str:
    """The sha256 of the upload's bytes, computed once per uploaded file. ``getvalue()``, not
    ``getbuffer()``: the latter copies the whole upload (an exported buffer must be writable)."""
    key = f"upload_sha256_{file.file_id}"
    if key not in st.session_state:
        st.session_state[key] = content_hash(file.getvalue())
    return st.session_state[key]


def read_upload(file, digest: str, text_column: str | None = None):
    """``(corpus, None)`` or ``(None, message)``: the upload read once per text column into a
    ColumnarCorpus on disk (analytics.uploads), then served from there on every rerun."""
    uploads = upload_cache()
    try:
        if uploads.cached(digest, file.name, text_column):
            return uploads.read(file.getvalue(), name=file.name, text_column=text_column, digest=digest), None
        bar = st.progress(0.0, text="Reading the file…")

        def progress(done, total):
            bar.progress(min(done / total, 1.0) if done and total else 0.0, text="Reading the file…")

        try:
            corpus = uploads.read(
                file.getvalue(), name=file.name, text_column=text_column, digest=digest, progress=progress
            )
        finally:
            bar.empty()
        return corpus, None
    except CorpusError as exc:
        return None, str(exc)


st.title("Upload")
s = store()
share_upload_bytes()
# an editor's page: a viewer reads the list (the actions check the role again on the server)
editor = signin.can("upload")
if not editor:
    st.info(
        f"Your role in this workspace ({signin.actor().role}) lets you read and run analyses. "
        "Uploading, renaming and deleting corpora need the editor role: ask an admin."
    )
file = (
    None
    if not editor
    else st.file_uploader(
        "Drop a corpus file",
        type=["csv", "tsv", "jsonl", "ndjson", "parquet", "txt"],
        help="CSV, TSV, JSONL, Parquet, or plain text with one document per line.",
    )
)
if file is not None:
    digest = upload_digest(file)
    first, error = read_upload(file, digest)
    if error is None:
        columns = [first.text_column, *first.columns]
        text_col = st.selectbox("Text column", columns, index=0)
        corpus = first
        if text_col != first.text_column:
            corpus, error = read_upload(file, digest, text_col)
    if error is not None:
        st.error(plain(error))
        st.stop()
    for note in corpus.notes:
        st.caption(plain(note))
    st.write(f"{len(corpus):,} texts; metadata columns: {plain(', '.join(corpus.columns) or 'none')}")
    st.dataframe([{"text": t, **m} for t, m in corpus.head], hide_index=True, width="stretch")
    guess = next(
        (c for c in corpus.columns if c.lower() in ("label", "labels", "category", "class", "topic")), None
    )
    label_options = ["(none)", *corpus.columns]
    label_col = st.selectbox(
        "Label column (colours the map)", label_options, index=label_options.index(guess) if guess else 0
    )
    name = st.text_input("Corpus name", value=file.name.rsplit(".", 1)[0])
    if st.button("Save corpus", type="primary"):
        label = None if label_col == "(none)" else label_col
        try:
            try:
                with signin.acting("upload", f"corpus {name!r}", f"sha256 {digest[:16]}", store=s):
                    info = s.add_corpus_stream(name, corpus, label_column=label)
            except FileNotFoundError:  # another session's uploads pushed this one out: read it again
                corpus, error = read_upload(file, digest, None if corpus is first else text_col)
                if error is not None:
                    raise StoreError(error) from None
                with signin.acting("upload", f"corpus {name!r}", f"sha256 {digest[:16]}", store=s):
                    info = s.add_corpus_stream(name, corpus, label_column=label)
            st.session_state["corpus"] = info.name
            st.success(f"Saved {plain(info.name)}: {info.n_docs:,} texts. Next: embed it.")
            st.page_link("views/embed.py", label="Go to Embed", icon=":material/memory:")
        except ExplorerError as exc:
            st.error(plain(exc))

if editor and st.button("Add the bundled sample (AG News, 7,600 texts)"):
    try:
        with signin.acting("upload", "the bundled sample", store=s):
            add_sample(s)
        st.success("Added the sample.")
    except StoreError as exc:
        st.error(plain(exc))

st.subheader("Corpora")
corpora = s.list_corpora()
st.dataframe(
    [
        {
            "name": c.name,
            "texts": c.n_docs,
            "label column": c.label_column,
            "source": c.source,
            "created": c.created,
        }
        for c in corpora
    ],
    hide_index=True,
    width="stretch",
)
if corpora and editor:
    names = [c.name for c in corpora]
    with st.expander("Rename or delete"):
        target = st.selectbox("Corpus", names, key="manage")
        new = st.text_input("New name", key="rename_to")
        if st.button("Rename") and new:
            try:
                rename_corpus(target, new)
                st.rerun()
            except ExplorerError as exc:
                st.error(plain(exc))
        if st.checkbox(f"Yes, delete this corpus ({len(names)} in the store)", key="confirm_delete"):
            if st.button("Delete", type="secondary"):
                delete_corpus(target)  # checks the role, stops jobs on it, writes the audit row
                st.rerun()
    with st.expander("Split a corpus by a metadata column (for shift tests)"):
        source = st.selectbox("Corpus to split", names, key="split_source")
        cols = metadata_columns(s.metadata(source, limit=1000))  # not every row of a large corpus
        if cols:
            column = st.selectbox("Column", cols, key="split_column")
            if st.button("Split"):
                try:
                    with signin.acting("upload", f"corpus {source!r}", f"split by {column!r}", store=s):
                        made = split_corpus(s, source, column)
                    st.success(f"Made {len(made)} corpora: " + plain(", ".join(made)))
                except ExplorerError as exc:
                    st.error(plain(exc))
        else:
            st.caption("This corpus has no metadata columns.")
