package standin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLeakyModel(t *testing.T) {
	s := &Server{}
	body := `{"model":"` + LeakyModel + `","stream":%s,"messages":[{"role":"user","content":"hi"},{"role":"system","content":"SYSTEM-PROMPT-TEXT"}]}`
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(strings.Replace(body, "%s", "false", 1))))
	if w.Code != 200 || !strings.Contains(w.Body.String(), LeakReply("SYSTEM-PROMPT-TEXT")) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(strings.Replace(body, "%s", "true", 1))))
	out := w.Body.String()
	if strings.Contains(out, "SYSTEM-PROMPT-TEXT") || !strings.Contains(out, "data: [DONE]") || strings.Count(out, "data: ") < 10 {
		t.Fatalf("the stream should split the system prompt into 7-byte pieces:\n%s", out)
	}
	// Other models keep echoing the last message.
	w = httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"warden-standin-small","messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"}]}`)))
	if !strings.Contains(w.Body.String(), Reply("hi")) {
		t.Fatal(w.Body.String())
	}
}
