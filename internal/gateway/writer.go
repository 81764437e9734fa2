package gateway

import (
	"net/http"
)

// ResponseWriter wraps the client's http.ResponseWriter to record the status
// and the number of body bytes sent. It supports flushing (SSE) through
// Unwrap, which http.ResponseController uses.
type ResponseWriter struct {
	w       http.ResponseWriter
	status  int
	written int64
}

// NewResponseWriter wraps w.
func NewResponseWriter(w http.ResponseWriter) *ResponseWriter { return &ResponseWriter{w: w} }

// Header returns the response headers.
func (rw *ResponseWriter) Header() http.Header { return rw.w.Header() }

// WriteHeader records and sends the status. 1xx informational headers are
// passed through without being recorded as the final status.
func (rw *ResponseWriter) WriteHeader(status int) {
	if status >= 100 && status < 200 {
		rw.w.WriteHeader(status)
		return
	}
	if rw.status != 0 {
		return
	}
	rw.status = status
	rw.w.WriteHeader(status)
}

// Write sends body bytes, sending a 200 status first if none was sent.
func (rw *ResponseWriter) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	n, err := rw.w.Write(p)
	rw.written += int64(n)
	return n, err
}

// Flush sends buffered data to the client at once.
func (rw *ResponseWriter) Flush() {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(rw.w).Flush()
}

// Unwrap returns the underlying writer for http.ResponseController.
func (rw *ResponseWriter) Unwrap() http.ResponseWriter { return rw.w }

// Status is the status sent to the client, 0 if nothing was sent yet.
func (rw *ResponseWriter) Status() int { return rw.status }

// Started reports whether any part of the response was sent.
func (rw *ResponseWriter) Started() bool { return rw.status != 0 }

// BytesWritten is the number of body bytes sent to the client.
func (rw *ResponseWriter) BytesWritten() int64 { return rw.written }

var (
	_ http.ResponseWriter = (*ResponseWriter)(nil)
	_ http.Flusher        = (*ResponseWriter)(nil)
)
