package server

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/mcp"
)

func TestOwnRequestRecord(t *testing.T) {
	base := mcp.OwnRequest{ID: "req_own", CausedBy: "req_client", What: "session_end",
		Principal: &gateway.Principal{Kind: "agent", ID: "agent-1", AuthMethod: "api_key", CredentialID: "key_1"},
		Route:     "tools", Upstream: "http://user:pw@mcp.internal:8080/base?x=1", Method: "DELETE", Path: "/mcp/",
		Session: mcp.SessionDigest("sess"), Start: time.Unix(100, 0), Duration: 1500 * time.Microsecond}
	tests := []struct {
		name       string
		edit       func(*mcp.OwnRequest)
		wantAction string
		wantCode   string
		wantReason string
	}{
		{"answered", func(r *mcp.OwnRequest) { r.Sent, r.Status = true, 204 }, "mcp.session_end", "warden_request",
			"caused by request req_client; the server answered 204"},
		{"failed", func(r *mcp.OwnRequest) { r.Sent, r.Error = true, "connection refused" }, "mcp.session_end",
			"warden_request_failed", "failed: connection refused"},
		{"not sent", func(r *mcp.OwnRequest) { r.What, r.Error = "server_request_refused", "not sent: 32 in flight" },
			"mcp.server_request_refused", "warden_request_not_sent", "req_client, not sent"},
		{"session sweep", func(r *mcp.OwnRequest) { r.CausedBy, r.Sent, r.Status = "", true, 204 }, "mcp.session_end", "warden_request",
			"caused by the session sweep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			rec := ownRequestRecord(r)
			if rec.Action != tc.wantAction || rec.Code != tc.wantCode || !strings.Contains(rec.Reason, tc.wantReason) {
				t.Fatalf("record %+v", rec)
			}
			if rec.RequestID != "req_own" || rec.Status != 0 || rec.Principal.ID != "agent-1" || rec.Resource.MCPSession != r.Session ||
				rec.Resource.API != gateway.APIMCP || rec.LatencyMS != 1.5 || !rec.Time.Equal(r.Start) {
				t.Fatalf("record %+v", rec)
			}
			if strings.Contains(rec.Upstream, "pw") || strings.Contains(rec.Upstream, "x=1") {
				t.Fatalf("upstream %q carries credentials or a query", rec.Upstream)
			}
		})
	}
}
