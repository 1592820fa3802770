"""Upload: bring a corpus in (or the bundled sample), or vectors computed elsewhere; manage
corpora, split one by a column.

The page speaks the page's words: a loader's hint at ``text_column=`` becomes "Choose the text
column below" (analytics.uploads.for_page). The label column is guessed from how many distinct
values each column holds (analytics.corpus.label_columns), and a sample of the texts is checked
for other languages than English, which the default model does not read (analytics.language)."""

import signin
import streamlit as st
from common import delete_corpus, plain, rename_corpus, store

from analytics import CorpusError, ExplorerError, StoreError
from analytics.corpus import label_candidates
from analytics.language import check_language, multilingual_note
from analytics.sample import add_sample
from analytics.tables import metadata_columns, split_corpus
from analytics.uploads import (
    content_hash,
    default_model_id,
    for_page,
    is_vector_upload,
    needs_text_column,
    sample_texts,
    save_corpus_with_vectors,
    save_vectors,
    upload_cache,
)


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
        with reading_bar() as progress:
            corpus = uploads.read(
                file.getvalue(), name=file.name, text_column=text_column, digest=digest, progress=progress
            )
        return corpus, None
    except CorpusError as exc:
        return None, str(exc)


def read_vector_upload(file, digest: str):
    """``(VectorUpload, None)`` or ``(None, message)``: a vector file opened and checked once."""
    uploads = upload_cache()
    try:
        if uploads.cached(digest, file.name, vectors=True):
            return uploads.read_vectors(file.getvalue(), name=file.name, digest=digest), None
        with reading_bar() as progress:
            upload = uploads.read_vectors(file.getvalue(), name=file.name, digest=digest, progress=progress)
        return upload, None
    except CorpusError as exc:
        return None, str(exc)


class reading_bar:
    """A progress bar while a file is read, gone once it is."""

    def __enter__(self):
        self.bar = st.progress(0.0, text="Reading the file…")

        def progress(done, total):
            self.bar.progress(min(done / total, 1.0) if done and total else 0.0, text="Reading the file…")

        return progress

    def __exit__(self, *exc):
        self.bar.empty()


def is_vectors(file, digest: str) -> bool:
    """Whether the upload holds vectors (.npy, .npz, Parquet with a list column), once per file."""
    key = f"upload_vectors_{digest}"
    if key not in st.session_state:
        st.session_state[key] = is_vector_upload(file.getvalue(), file.name)
    return st.session_state[key]


def language_note(corpus) -> str | None:
    """The note for texts that do not look English (the default model is English-only), from an
    evenly spaced sample of the upload, worked out once per upload."""
    key = f"upload_language_{corpus.path.name}"
    if key not in st.session_state:
        st.session_state[key] = multilingual_note(check_language(sample_texts(corpus)))
    return st.session_state[key]


def preview(corpus) -> None:
    for note in corpus.notes:
        st.caption(plain(for_page(note)))
    st.write(f"{len(corpus):,} texts; metadata columns: {plain(', '.join(corpus.columns) or 'none')}")
    st.dataframe([{"text": t, **m} for t, m in corpus.head], hide_index=True, width="stretch")


def pick_label(corpus, key: str | None = None) -> str | None:
    """The label column, the best guess preselected (columns with few distinct values)."""
    guesses = label_candidates(corpus)
    options = ["(none)", *guesses, *(c for c in corpus.columns if c not in guesses)]
    label_col = st.selectbox(
        "Label column (colours the map)",
        options,
        index=1 if guesses else 0,
        key=key,
        help="A column with few distinct values, such as a category or an intent. The map colours "
        "by it, and the Shift page can compare its values.",
    )
    if guesses:
        st.caption(
            "Guessed from the columns with few distinct values: "
            + plain(", ".join(guesses))
            + ". Change it here."
        )
    return None if label_col == "(none)" else label_col


def texts_form(file, digest: str) -> None:
    """A corpus file: its text column (inferred, changeable), preview, label, name, Save."""
    first, error = read_upload(file, digest)
    slot = st.empty()  # the first read's refusal, above the column choice, until a column is chosen
    if error is None:
        columns, index = [first.text_column, *first.columns], 0
    else:  # the column inferred holds no usable text: offer the file's columns, if that can help
        columns = upload_cache().columns(file.getvalue(), name=file.name, digest=digest)
        index = None
        if not needs_text_column(error) or len(columns) < 2:
            st.error(plain(for_page(error, choose=False)))
            st.stop()
    text_col = st.selectbox(
        "Text column",
        columns,
        index=index,
        placeholder="Choose the text column",
        help="The column that holds the texts; the other columns are kept as metadata.",
    )
    corpus = first
    if text_col is None:
        slot.error(plain(for_page(error)))
        st.stop()
    if first is None or text_col != first.text_column:
        corpus, error = read_upload(file, digest, text_col)
    if error is not None:
        st.error(plain(for_page(error)))
        st.stop()
    preview(corpus)
    note = language_note(corpus)
    if note:
        st.warning(plain(note), icon=":material/translate:")
    label = pick_label(corpus)
    name = st.text_input("Corpus name", value=file.name.rsplit(".", 1)[0])
    if st.button("Save corpus", type="primary"):
        try:
            try:
                with signin.acting("upload", f"corpus {name!r}", f"sha256 {digest[:16]}", store=s):
                    info = s.add_corpus_stream(name, corpus, label_column=label)
            except FileNotFoundError:  # another session's uploads pushed this one out: read it again
                corpus, error = read_upload(file, digest, None if corpus is first else text_col)
                if error is not None:
                    raise StoreError(for_page(error)) from None
                with signin.acting("upload", f"corpus {name!r}", f"sha256 {digest[:16]}", store=s):
                    info = s.add_corpus_stream(name, corpus, label_column=label)
            st.session_state["corpus"] = info.name
            st.success(f"Saved {plain(info.name)}: {info.n_docs:,} texts. Next: embed it.")
            st.page_link("views/embed.py", label="Go to Embed", icon=":material/memory:")
        except ExplorerError as exc:
            st.error(plain(for_page(str(exc))))


OWN_TEXTS = "\0own"


def vectors_form(file, digest: str) -> None:
    """A vector file: which corpus it is for (a stored one, or the texts the file carries), the
    model name to keep them under, Import. Every value was checked when the file was read."""
    upload, error = read_vector_upload(file, digest)
    if error is not None:
        st.error(plain(for_page(error)))
        st.stop()
    vectors = upload.vectors
    where = f" (column {upload.vector_column!r})" if upload.vector_column else ""
    st.write(f"{vectors.n:,} vectors of dimension {vectors.dim:,}{plain(where)}.")
    corpora = {c.name: c.n_docs for c in s.list_corpora()}
    options = ([OWN_TEXTS] if upload.texts is not None else []) + list(corpora)
    if upload.texts_problem:
        st.caption(plain(for_page(upload.texts_problem)))
    if not options:
        st.info(
            "These vectors need their texts. Drop the corpus file they were made from here first "
            "and save it, then drop the vector file again."
        )
        st.stop()
    recent = st.session_state.get("corpus")
    fits = [n for n, docs in corpora.items() if docs == vectors.n]
    default = OWN_TEXTS if upload.texts is not None else (recent if recent in fits else (fits or options)[0])

    def label(option: str) -> str:
        if option == OWN_TEXTS:
            return f"The texts in this file (column {upload.texts.text_column!r}): a new corpus"
        return f"{option} ({corpora[option]:,} texts)"

    target = st.selectbox(
        "Vectors for",
        options,
        index=options.index(default),
        format_func=label,
        help="Row i of the file is the vector of text i of the corpus (or of the file's own texts).",
    )
    name = target
    label_col = None
    if target == OWN_TEXTS:
        preview(upload.texts)
        label_col = pick_label(upload.texts, key="vector_label")
        name = st.text_input("Corpus name", value=file.name.rsplit(".", 1)[0], key="vector_corpus_name")
    elif vectors.ids is None and corpora[target] != vectors.n:
        st.warning(
            f"{vectors.n:,} vectors, but {plain(target)} has {corpora[target]:,} texts: the file needs "
            "one vector per text, in the corpus's order. Choose the corpus they were made from."
        )
    model = st.text_input(
        "Model name for these vectors",
        value=default_model_id(file.name),
        help="The vectors are kept under this name, as a model of their own; the Map, Depth, Outliers "
        "and Shift pages then use them instead of embedding the texts. Use one name per source of vectors.",
    )
    if st.button("Save corpus and vectors" if target == OWN_TEXTS else "Import vectors", type="primary"):
        detail = f"vectors {model!r}, sha256 {digest[:16]}"
        try:
            with signin.acting("upload", f"corpus {name!r}", detail, store=s):
                if target == OWN_TEXTS:
                    info, added = save_corpus_with_vectors(
                        s, upload, name=name, model_id=model, label_column=label_col
                    )
                    name = info.name
                else:
                    added = save_vectors(s, upload, corpus=name, model_id=model)
        except ExplorerError as exc:  # a file another session's uploads pushed out says so too
            st.error(plain(for_page(str(exc))))
            st.stop()
        st.session_state["corpus"] = name
        st.session_state["model_id"] = model.strip()
        st.success(
            f"Stored {vectors.n:,} vectors for {plain(name)} as {plain(model.strip())} ({added:,} new). "
            "The Map, Depth, Outliers and Shift pages use them in this session."
        )
        st.page_link("views/map.py", label="Go to the Map", icon=":material/scatter_plot:")


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
        "Drop a corpus file, or a file of vectors",
        type=["csv", "tsv", "jsonl", "ndjson", "parquet", "txt", "npy", "npz"],
        help="Texts: CSV, TSV, JSONL, Parquet, or plain text with one document per line. Vectors "
        "computed elsewhere: .npy or .npz (one row per text, in order), or Parquet with a column "
        "of number lists (with the texts in another column, or for a corpus stored here).",
    )
)
if file is not None:
    digest = upload_digest(file)
    if is_vectors(file, digest):
        vectors_form(file, digest)
    else:
        texts_form(file, digest)

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
