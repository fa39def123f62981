"""get_file: download a file once and keep it in a cache folder."""

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

__all__ = ["get_file"]


def rnnkit_home():
    """The folder rnnkit caches files in: `$RNNKIT_HOME`, by default `~/.rnnkit`."""
    return os.environ.get("RNNKIT_HOME", os.path.join(os.path.expanduser("~"), ".rnnkit"))


def get_file(
    fname=None,
    origin=None,
    untar=False,
    md5_hash=None,
    file_hash=None,
    cache_subdir="datasets",
    hash_algorithm="auto",
    extract=False,
    archive_format="auto",
    cache_dir=None,
    force_download=False,
):
    """Downloads a file unless the cache already has it, as Keras's `get_file`.

    The file goes to `cache_dir/cache_subdir/fname`, by default `~/.rnnkit/datasets/fname`.

    Args:
        fname: The file's name in the cache, by default the last part of `origin`'s path.
        origin: The URL to download from.
        untar: Deprecated in Keras: the same as `extract=True, archive_format="tar"`.
        md5_hash: Deprecated in Keras: the same as `file_hash` with `hash_algorithm="md5"`.
        file_hash: The expected sha256 or md5 hex digest; a cached file that does not match
            is downloaded again, a download that does not match is an error.
        cache_subdir: The subfolder of `cache_dir` (an absolute path is used as it is).
        hash_algorithm: "sha256", "md5", or "auto" (sha256 for 64-character hashes).
        extract: Whether to extract the file as an archive (tar, tar.gz, tar.bz2, zip).
        archive_format: "auto", "tar", "zip", or a list of them to try.
        cache_dir: The cache folder, `~/.rnnkit` by default.
        force_download: Whether to download even when the file is cached.

    Returns:
        The path of the file, or of the folder it was extracted to when `extract` is True.

    Raises:
        ValueError: If neither `fname` nor `origin` gives a file name, `fname` is a path, or
            the downloaded file does not match `file_hash`.
        OSError: If the file must be downloaded and cannot be; the message names the URL and
            the path to copy the file to by hand.
    """
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    named = bool(fname)
    fname = os.fspath(fname) if named else None
    if not named:
        fname = os.path.basename(urllib.parse.urlsplit(origin or "").path)
        if not fname:
            raise ValueError(f"get_file: fname: expected a file name when origin has none, received origin={origin!r}")
    elif os.sep in fname:
        raise ValueError(f"get_file: fname: expected a file name (give folders as cache_dir), received {fname!r}")
    folder = os.path.join(os.path.expanduser(cache_dir or rnnkit_home()), cache_subdir)
    os.makedirs(folder, exist_ok=True)
    extract = extract or untar
    target = destination = os.path.join(folder, fname)
    # The archive and the folder it extracts to need two names, chosen as Keras does.
    if extract and named and "." in fname:
        destination = os.path.join(folder, fname[: fname.find(".")] + "_extracted")
    elif extract:
        target += "_archive"

    cached = os.path.exists(target) and not force_download
    if cached and file_hash is not None and not _matches(target, file_hash, hash_algorithm):
        print(f"The cached {target} does not match the {hash_algorithm} hash {file_hash}: downloading it again.")
        cached = False
    if not cached:
        _download(origin, target)
        if file_hash is not None and not _matches(target, file_hash, hash_algorithm):
            raise ValueError(
                f"get_file: file_hash: expected {file_hash} ({hash_algorithm}), received a different file from "
                f"{origin} (left at {target})"
            )
    if not extract:
        return target
    if not (cached and os.path.isdir(destination)):
        _extract(target, destination, "tar" if untar else archive_format)
    return destination


def _download(origin, target):
    """Downloads `origin` to `target` through a temporary file, so a failure leaves no partial file."""
    if not origin:
        raise OSError(f"get_file: origin: expected a URL to download {target} from, received {origin!r}")
    print(f"Downloading data from {origin}")
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(origin, timeout=60) as response:
            shutil.copyfileobj(response, out)
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, ValueError) as err:
        os.unlink(partial)
        raise OSError(
            f"get_file: could not download {origin} ({err}). Offline, download it on a machine with network "
            f"access and copy it to {target}."
        ) from None
    except BaseException:
        os.unlink(partial)
        raise


def _matches(path, file_hash, algorithm):
    """Whether the file's digest is `file_hash`."""
    if algorithm == "auto":
        algorithm = "sha256" if len(file_hash) == 64 else "md5"
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == str(file_hash)


def _extract(archive, destination, archive_format):
    """Extracts a tar or zip archive into `destination`, refusing members that would land outside it."""
    formats = (
        ["tar", "zip"]
        if archive_format == "auto"
        else ([archive_format] if isinstance(archive_format, str) else list(archive_format))
    )
    for kind in formats:
        if kind == "tar" and tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                tar.extractall(destination, filter="data")
            return
        if kind == "zip" and zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zipped:
                root = os.path.realpath(destination)
                for name in zipped.namelist():
                    if not os.path.realpath(os.path.join(root, name)).startswith(root + os.sep):
                        raise ValueError(
                            f"get_file: extract: expected archive members inside the folder, received {name!r}"
                        )
                zipped.extractall(destination)
            return
    raise ValueError(f"get_file: archive_format: expected an archive of format {archive_format!r}, received {archive}")
