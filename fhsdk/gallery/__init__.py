"""The gallery: enrolled identities' embeddings, searched by cosine, saved atomically.

store.py holds and searches it, file_format.py reads and writes its file, encryption.py encrypts that
file, faiss_index.py builds optional FAISS indexes.

A gallery file holds biometric templates: treat it as personal data. It is a NumPy .npz written
without pickle (names as their UTF-8 bytes end to end plus offsets, so one long name does not widen
every row) and read with allow_pickle=False, stamped with a format
version, the fingerprint of the recogniser that made the embeddings, and a SHA-256 checksum over
every stored array. Loading checks all of it: a damaged, foreign or altered file, or one made by
another recogniser, is refused with a GalleryError. The checksum catches corruption and careless
edits; only a key (`save(path, key=...)`, AES-256-GCM from the `cryptography` package) also makes
the file confidential and tamper-proof against someone who recomputes the checksum.

Saves write a temporary file beside the gallery, fsync it, rename it over the old one and fsync the
folder, so a crash or kill at any moment leaves either the old or the new gallery, whole. Saves to
one gallery take a file lock, which also lets each save sweep temporary files of killed saves.
"""

from fhsdk.gallery.faiss_index import INDEX_KINDS
from fhsdk.gallery.file_format import FORMAT_VERSION, check_writable, gallery_path
from fhsdk.gallery.store import Gallery, Match

__all__ = ["FORMAT_VERSION", "INDEX_KINDS", "Gallery", "Match", "check_writable", "gallery_path"]
