"""Home: open a dataset, upload images, define classes, see the dataset summary, jobs and counts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from labeler.config import WORKSPACE_DIRNAME
from labeler.store import ClassInUse, InvalidClassName
from labeler.workflow import report
from pages.shared import class_keys, jobs_panel, model_view, remembered, session, text

st.title("labeler")
st.caption("Label a few images; the rest are labeled for you, with an honest estimate of how far to trust them.")

settings = session.settings()

# ----------------------------------------------------------------------------------------------- dataset
with st.expander(f"Dataset: {text.plain(settings.data_dir)}", expanded=not settings.data_dir.is_dir()):
    col_path, col_open, col_sample, col_photos = st.columns([4, 1, 1, 1], vertical_alignment="bottom")
    folder_text = col_path.text_input("Folder of images", placeholder="/home/me/photos", key="folder_text")
    if col_open.button("Open folder", key="open_folder"):
        folder, problem = session.check_folder(folder_text)
        if problem:
            st.error(text.plain(problem))
        else:
            st.session_state["data_dir"] = str(folder)
            st.rerun()
    if col_sample.button("Open sample", key="open_sample", help="1,000 Fashion-MNIST images (small, grey)"):
        st.session_state["data_dir"] = str(session.SAMPLE_DIR)
        st.rerun()
    if col_photos.button("Photo sample", key="open_photo_sample", help="120 photos of cats and dogs (Oxford-IIIT Pet)"):
        st.session_state["data_dir"] = str(session.SAMPLE_PHOTOS_DIR)
        st.rerun()
    if session.ground_truth_for(settings.data_dir) is not None:
        st.toggle(
            "Teaching mode (show the true accuracy from the ground truth; never used as labels)",
            **remembered.bind(session.TEACHING_KEY, session.teaching_mode()),
        )
    uploads = st.file_uploader(
        "Upload images or a .zip of images",
        type=["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff", "zip"],
        accept_multiple_files=True,
        key=f"uploads_{st.session_state.get('uploads_saved', 0)}",  # a new key empties it once they are saved
    )
    in_uploads = session.uploads_into_open_dataset(settings)
    if uploads and st.button("Add the uploaded files to this upload dataset" if in_uploads else
                             "Add the uploaded files to a new upload dataset", key="save_uploads"):
        folder = session.save_uploads(settings, uploads)
        st.session_state["uploads_saved"] = st.session_state.get("uploads_saved", 0) + 1
        if folder == settings.data_dir:
            # Already open, so nothing else reads the folder again: the new files must be imported here (a user
            # trial's zip was saved and never imported).
            session.start_import()
        st.session_state["data_dir"] = str(folder)
        st.rerun()

if not settings.data_dir.is_dir():
    st.error(f"The data folder {text.plain(settings.data_dir)} does not exist or is not a folder. Open another one "
             "above.")
    st.stop()
if settings.workspace_dir == session.fallback_workspace(settings.data_dir):
    own = settings.data_dir / WORKSPACE_DIRNAME
    st.info(f"{text.plain(settings.data_dir)} is read-only, so labeler keeps its labels and caches in "
            f"{text.plain(settings.workspace_dir)}. The images are only read."
            + (f" The folder's own workspace {text.plain(own)} cannot be written here and is not used: to go on "
               "with its labels, start `labeler app` with `--workspace` on a writable copy of it."
               if (own / "labeler.db").is_file() else ""), icon=":material/lock:")

ws = session.require_images()
col_rescan, col_folders = st.columns([1, 3], vertical_alignment="center")
from_folders = col_folders.checkbox("Take labels from sub-folder names", key="labels_from_folders",
                                    help="Each image in a sub-folder without a label gets the folder's name as its "
                                    "class. Images that have a label keep it: a re-scan never overwrites a label.")
if col_rescan.button("Re-scan folder", key="rescan", help="Finds new, changed and removed files (in the background: "
                    "progress under Background jobs)."):
    session.start_import(labels_from_folders=from_folders)
shown = jobs_panel.import_shown(ws)  # read before the report and counts: a newer one then reruns the page
imported = session.last_import()
if imported is not None:
    # The whole report but its file lists: unreadable files and duplicates are listed under Dataset below.
    st.caption("Last import: " + "  \n".join(text.plain(line) for line in imported.summary_lines()))
    if imported.folder_label_problems:
        with st.expander(f"{len(imported.folder_label_problems)} folder labels skipped, and why"):
            st.dataframe([{"file": p, "reason": r} for p, r in imported.folder_label_problems], hide_index=True)
for line in st.session_state.get("import_lines", []):  # what the last upload saved
    st.caption(text.plain(line))

# ----------------------------------------------------------------------------------------------- classes
st.subheader("Classes")
classes = ws.store.classes()
if classes:
    keys = class_keys.keys_for(classes)
    table = pd.DataFrame({"colour": ["" for _ in classes], "class": [c.name for c in classes],
                          "key": [k or "none" for k in keys]})
    # The colour column is a swatch: its cell is painted with the class colour and holds no text.
    swatches = table.style.apply(
        lambda column: [f"background-color: {c.colour}" for c in classes], subset=["colour"]
    )
    st.dataframe(swatches, hide_index=True, width="content", column_config={
        "colour": st.column_config.TextColumn("colour", width="small"),
        "class": st.column_config.TextColumn("class", width="medium"),
        "key": st.column_config.TextColumn("key", width="small"),
    })
else:
    st.info("No classes yet. Add the classes you want to sort your images into.")
from_truth = ws.ground_truth_classes_missing()  # teaching mode only: empty without a ground truth
if from_truth:
    listed = ", ".join(from_truth[:8]) + (", …" if len(from_truth) > 8 else "")
    if st.button(f"Add the ground truth's {report.counted(len(from_truth), 'class', 'classes')}: {listed}",
                 key="add_truth_classes", help="Teaching mode: the classes the ground-truth CSV names, spelled as it "
                 "spells them, so that the true accuracy can be measured. Its labels are never used as labels."):
        refused = []
        for name in from_truth:
            try:
                ws.store.add_class(name)
            except InvalidClassName as error:
                refused.append(f"{name}: {error}")
        if refused:
            st.error(text.plain("Not added: " + "; ".join(refused)))
        else:
            st.rerun()

with st.form("add_class", clear_on_submit=True, border=True):
    col_name, col_colour, col_key, col_add = st.columns([5, 1, 2, 2], vertical_alignment="bottom")
    name = col_name.text_input("New class", placeholder="e.g. cat", key="new_class_name")
    # Keys change with the number of classes so each new class starts from a fresh colour and free key.
    colour = col_colour.color_picker("Colour", value=class_keys.next_colour(classes),
                                     key=f"new_class_colour_{len(classes)}")
    hotkey = col_key.selectbox("Key", [class_keys.AUTO_KEY, *class_keys.HOTKEYS], index=0,
                               format_func=class_keys.key_label, key=f"new_class_key_{len(classes)}",
                               help="Press it on the Label and Review pages to pick this class. Auto: the class's "
                               "name when it is a single free key (0 for a class named 0), else the next free one: "
                               "1-9, then 0, then letters.")
    if col_add.form_submit_button("Add class"):
        if hotkey == class_keys.AUTO_KEY:
            hotkey = class_keys.auto_hotkey(classes, name) or ""
        taken = class_keys.hotkey_owner(classes, hotkey)
        try:
            if taken:
                raise ValueError(f"key {hotkey} already labels {taken}; pick another key")
            if any(c.name == name.strip() for c in classes):  # the store would quietly return the existing class
                raise ValueError(f"a class named {name.strip()} already exists; pick another name")
            ws.store.add_class(name, colour=colour, hotkey=hotkey)  # "": no key (None would pick one)
        except (InvalidClassName, ValueError) as error:
            st.error(text.plain(error))
        else:
            st.rerun()

if classes:
    with st.expander("Edit or delete a class"):
        chosen = st.selectbox("Class", classes, format_func=lambda c: c.name, key="edit_class")
        col_name, col_colour, col_key = st.columns([5, 1, 2], vertical_alignment="bottom")
        new_name = col_name.text_input("Name", value=chosen.name, key=f"edit_name_{chosen.id}")
        new_colour = col_colour.color_picker("Colour", value=chosen.colour, key=f"edit_colour_{chosen.id}")
        hotkeys = class_keys.HOTKEYS
        current_key = chosen.hotkey if chosen.hotkey in hotkeys else ""
        new_key = col_key.selectbox("Key", hotkeys, index=hotkeys.index(current_key), format_func=class_keys.key_label,
                                    key=f"edit_key_{chosen.id}")
        col_save, col_delete = st.columns(2)
        if col_delete.button("Delete class", key="delete_class",
                             help="For a class made by mistake: only while no image has its label and no blind "
                                  "audit answer names it. Labels are never deleted; an undo that would give an image "
                                  "this class back is refused."):
            try:
                gone = ws.store.delete_class(chosen.id)
            except ClassInUse as error:
                st.error(text.plain(f"{chosen.name} stays: {error}"))
            else:
                session.request_refresh()  # the propagation's columns are the classes
                st.toast(text.plain(f"Deleted class {gone.name}."), icon=":material/delete:")
                st.rerun()
        if col_save.button("Save class", key="save_class"):
            others = [c for c in classes if c.id != chosen.id]
            try:
                taken = class_keys.hotkey_owner(others, new_key)
                if taken:
                    raise ValueError(f"key {new_key} already labels {taken}; pick another key")
                if any(c.name == new_name.strip() for c in others):
                    raise ValueError(f"a class named {new_name.strip()} already exists; pick another name")
                ws.store.update_class(chosen.id, name=new_name, colour=new_colour, hotkey=new_key)
            except (InvalidClassName, ValueError) as error:
                st.error(text.plain(error))
            else:
                st.rerun()

# ----------------------------------------------------------------------------------------------- summary
st.subheader("Dataset")
summary = session.dataset_summary(ws)
if shown[1]:
    st.info("A re-scan is reading the folder (progress under Background jobs): these counts are from before it "
            "and update as soon as it ends.", icon=":material/sync:")
col_images, col_unreadable, col_dupes = st.columns(3)
col_images.metric("Readable images", summary["images"])
col_unreadable.metric("Unreadable", len(summary["unreadable"]))
col_dupes.metric("Exact duplicates", len(summary["duplicates"]))
if summary["unreadable"]:
    with st.expander("Unreadable files and why"):
        st.dataframe([{"file": p, "reason": r} for p, r in summary["unreadable"]], hide_index=True)
if summary["duplicates"]:
    with st.expander("Duplicates"):
        st.dataframe([{"file": p, "same as": o} for p, o in summary["duplicates"]], hide_index=True)


# ----------------------------------------------------------------------------------------------- live status
@st.fragment(run_every=jobs_panel.POLL_ACTIVE_S)
def live_status() -> None:
    st.subheader("Labels")
    counts = jobs_panel.live_counts(ws)
    jobs_panel.unlabeled_classes_banner(counts)
    col_h, col_p, col_u, col_n, col_a = st.columns(5)
    col_h.metric("Human", counts.human)
    col_p.metric("Propagated", counts.propagated,
                 help="Images that took a class from the human labels around them. Only classes with at least "
                 "one human label can be propagated.")
    col_u.metric("Audited", counts.audited,
                 help="Propagated images you audited blind: the export gives them your answer (source audited); "
                 "they are never seeds.")
    col_n.metric("Unreached", counts.none, help="Images no human label reaches yet (or no propagation yet).")
    if counts.lagging:
        st.caption("Propagation is catching up with the latest labels and images; these numbers will change.")
    current = session.state(ws)  # loaded once per saved state, not once a second
    headline = report.headline(ws, current)
    col_a.metric("Estimated accuracy", headline["value"], help=headline["detail"])
    st.caption(headline["detail"])
    teaching = model_view.teaching(ws, current) if current is not None else None
    if teaching and teaching.get("accuracy") is not None:  # teaching mode: the truth beside the estimate
        st.caption(f"Teaching mode: {text.percent(teaching['accuracy'])} of the {teaching['n']:,} propagated labels "
                   "the ground truth names are right (never used as labels; the estimate above does without it).")
    verdict = report.stopping(ws, current)
    (st.success if verdict["stop"] else st.info)(verdict["text"])
    st.subheader("Background jobs")
    jobs_panel.render_jobs(ws)


live_status()
jobs_panel.rerun_when_imported(ws, shown)
