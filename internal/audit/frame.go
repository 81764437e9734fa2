package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk framing of the file backend (see filestore.go for the layout).
//
// A file of frames starts with a 16-byte header: an 8-byte magic naming the
// file's kind and version, then a big-endian uint64 (for a segment, the
// index of its first record; 0 otherwise). Each frame is
//
//	length  uint32 big-endian, 1..maxFramePayload
//	crc     uint32 big-endian, CRC-32C (Castagnoli) of length's 4 bytes and the payload
//	payload length bytes
//
// The CRC detects a torn write (a frame cut short or holding garbage after
// a crash); it is not a security measure — the Merkle tree is.
const (
	fileHeaderLen   = 16
	frameHeaderLen  = 8
	maxFramePayload = MaxRecordBytes
)

var (
	segmentMagic    = [8]byte{'W', 'D', 'N', 'A', 'U', 'D', 'S', '1'}
	checkpointMagic = [8]byte{'W', 'D', 'N', 'A', 'U', 'D', 'C', '1'}
	castagnoli      = crc32.MakeTable(crc32.Castagnoli)
)

// fileHeader returns the 16-byte header of a frame file.
func fileHeader(magic [8]byte, first int64) []byte {
	b := make([]byte, fileHeaderLen)
	copy(b, magic[:])
	binary.BigEndian.PutUint64(b[8:], uint64(first))
	return b
}

// parseFileHeader checks the magic and returns the header's number.
func parseFileHeader(b []byte, magic [8]byte) (int64, error) {
	if len(b) < fileHeaderLen {
		return 0, fmt.Errorf("header is %d bytes, want %d", len(b), fileHeaderLen)
	}
	if [8]byte(b[:8]) != magic {
		return 0, fmt.Errorf("bad magic %q, want %q", b[:8], magic[:])
	}
	n := binary.BigEndian.Uint64(b[8:16])
	if n > 1<<62 {
		return 0, fmt.Errorf("header number %d out of range", n)
	}
	return int64(n), nil
}

// appendFrame appends payload as one frame.
func appendFrame(dst, payload []byte) []byte {
	var h [frameHeaderLen]byte
	binary.BigEndian.PutUint32(h[:4], uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, h[:4])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.BigEndian.PutUint32(h[4:], crc)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// Frame errors. errFrameShort means b ends inside the frame (a torn write,
// or one in progress); errFrameBad means the frame is malformed (bad
// length or checksum).
var (
	errFrameShort = errors.New("incomplete frame")
	errFrameBad   = errors.New("malformed frame")
)

// frameLen reads a frame header and returns the payload length. b must
// hold at least frameHeaderLen bytes.
func frameLen(h []byte) (int, error) {
	n := binary.BigEndian.Uint32(h[:4])
	if n == 0 || n > maxFramePayload {
		return 0, fmt.Errorf("%w: length %d", errFrameBad, n)
	}
	return int(n), nil
}

// checkFrame checks payload against the frame header h.
func checkFrame(h, payload []byte) error {
	crc := crc32.Update(0, castagnoli, h[:4])
	crc = crc32.Update(crc, castagnoli, payload)
	if crc != binary.BigEndian.Uint32(h[4:8]) {
		return fmt.Errorf("%w: checksum mismatch", errFrameBad)
	}
	return nil
}

// parseFrame parses the frame at the start of b and returns its payload
// (a sub-slice of b) and the frame's total length.
func parseFrame(b []byte) (payload []byte, n int, err error) {
	if len(b) < frameHeaderLen {
		return nil, 0, errFrameShort
	}
	plen, err := frameLen(b)
	if err != nil {
		return nil, 0, err
	}
	if len(b)-frameHeaderLen < plen {
		return nil, 0, errFrameShort
	}
	payload = b[frameHeaderLen : frameHeaderLen+plen]
	if err := checkFrame(b, payload); err != nil {
		return nil, 0, err
	}
	return payload, frameHeaderLen + plen, nil
}
