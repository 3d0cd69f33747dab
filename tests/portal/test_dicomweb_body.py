"""The portal's STOW body encoding is dicomweb-client's, byte for byte (only built with fewer copies)."""

from dicomweb_client.api import DICOMwebClient

from portal.studies.dicomweb import PortalDICOMwebClient

CONTENT_TYPE = 'multipart/related; type="application/dicom"; boundary="0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"'


def test_stow_body_equals_dicomweb_clients(ct_files):
    files = [path.read_bytes() for path in ct_files[:3]] + [b""]
    ours = PortalDICOMwebClient._encode_multipart_message(files, CONTENT_TYPE)
    assert bytes(ours) == DICOMwebClient._encode_multipart_message(files, CONTENT_TYPE)
    assert bytes(ours[5:1_000_005]) == bytes(ours)[5:1_000_005]  # the client's chunking slices it
