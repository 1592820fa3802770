"""Upload: bring a corpus in (or the bundled sample), manage corpora, split one by a column."""

import hashlib

import streamlit as st
from common import executor, plain, store

from analytics import CorpusError, ExplorerError, StoreError, load_corpus
from analytics.sample import add_sample
from analytics.tables import metadata_columns, split_corpus


@st.cache_resource(show_spinner="Reading the file…", max_entries=2)
def parse_upload(digest: str, name: str, text_column: str | None, _file):
    """``(corpus, None)`` or ``(None, message)`` for the upload whose bytes hash to ``digest``:
    parsed once, not again on each widget interaction (a refusal is kept too). cache_resource,
    not cache_data: the corpus is shared as it is, never copied (pickled) on each rerun."""
    try:
        return load_corpus(_file.getvalue(), text_column, name=name), None
    except CorpusError as exc:
        return None, str(exc)


def upload_digest(file) -> str:
    """The sha256 of the upload's bytes, computed once per uploaded file."""
    key = f"upload_sha256_{file.file_id}"
    if key not in st.session_state:
        st.session_state[key] = hashlib.sha256(file.getbuffer()).hexdigest()
    return st.session_state[key]


st.title("Upload")
s = store()

file = st.file_uploader(
    "Drop a corpus file",
    type=["csv", "tsv", "jsonl", "ndjson", "parquet", "txt"],
    help="CSV, TSV, JSONL, Parquet, or plain text with one document per line.",
)
if file is not None:
    digest = upload_digest(file)
    first, error = parse_upload(digest, file.name, None, file)
    if error is None:
        columns = [first.text_column, *first.columns]
        text_col = st.selectbox("Text column", columns, index=0)
        corpus = first
        if text_col != first.text_column:
            corpus, error = parse_upload(digest, file.name, text_col, file)
    if error is not None:
        st.error(plain(error))
        st.stop()
    for note in corpus.notes:
        st.caption(plain(note))
    st.write(f"{len(corpus):,} texts; metadata columns: {plain(', '.join(corpus.columns) or 'none')}")
    st.dataframe(
        [{"text": t, **m} for t, m in zip(corpus.texts[:50], corpus.metadata[:50])],
        hide_index=True,
        width="stretch",
    )
    guess = next(
        (c for c in corpus.columns if c.lower() in ("label", "labels", "category", "class", "topic")), None
    )
    label_options = ["(none)", *corpus.columns]
    label_col = st.selectbox(
        "Label column (colours the map)", label_options, index=label_options.index(guess) if guess else 0
    )
    name = st.text_input("Corpus name", value=file.name.rsplit(".", 1)[0])
    if st.button("Save corpus", type="primary"):
        try:
            info = s.add_corpus(name, corpus, label_column=None if label_col == "(none)" else label_col)
            st.session_state["corpus"] = info.name
            st.success(f"Saved {plain(info.name)}: {info.n_docs:,} texts. Next: embed it.")
            st.page_link("views/embed.py", label="Go to Embed", icon=":material/memory:")
        except StoreError as exc:
            st.error(plain(exc))

if st.button("Add the bundled sample (AG News, 7,600 texts)"):
    try:
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
if corpora:
    names = [c.name for c in corpora]
    with st.expander("Rename or delete"):
        target = st.selectbox("Corpus", names, key="manage")
        new = st.text_input("New name", key="rename_to")
        if st.button("Rename") and new:
            try:
                s.rename_corpus(target, new)
                st.rerun()
            except StoreError as exc:
                st.error(plain(exc))
        if st.checkbox(f"Yes, delete this corpus ({len(names)} in the store)", key="confirm_delete"):
            if st.button("Delete", type="secondary"):
                # jobs working on it stop first (an embedding would otherwise end in vain)
                for job in executor().jobs(active=True):
                    if target in (job.params.get("corpus"), job.params.get("compare")):
                        executor().cancel(job.id)
                s.delete_corpus(target)
                st.rerun()
    with st.expander("Split a corpus by a metadata column (for shift tests)"):
        source = st.selectbox("Corpus to split", names, key="split_source")
        cols = metadata_columns(s.metadata(source))
        if cols:
            column = st.selectbox("Column", cols, key="split_column")
            if st.button("Split"):
                try:
                    made = split_corpus(s, source, column)
                    st.success(f"Made {len(made)} corpora: " + plain(", ".join(made)))
                except ExplorerError as exc:
                    st.error(plain(exc))
        else:
            st.caption("This corpus has no metadata columns.")
