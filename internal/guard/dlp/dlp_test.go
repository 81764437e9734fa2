package dlp

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/warden-ai/warden/internal/guard"
)

// synth returns n characters from alphabet, the same for the same seed:
// synthetic key material for tests, never a real credential.
func synth(alphabet string, n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	alnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b64url = alnum + "-_"
	b64std = alnum + "+/"
	base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)

func jwtOf(header, payload string, sigLen int) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + synth(b64url, sigLen, 9)
}

var (
	testAWS       = "AKIA" + synth(base32, 16, 1)
	testGitHub    = "ghp_" + synth(alnum, 36, 2)
	testOpenAI    = "sk-" + synth(alnum, 20, 3) + "T3BlbkFJ" + synth(alnum, 20, 4)
	testOpenAIPrj = "sk-proj-" + synth(b64url, 64, 5) + "T3BlbkFJ" + synth(b64url, 64, 6)
	testAnthropic = "sk-ant-api03-" + synth(b64url, 93, 7) + "AA"
	testJWT       = jwtOf(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"1234567890","name":"Test User","iat":1516239022}`, 43)
	testGCP       = "AIza" + synth(b64url, 35, 8)
	testSlack     = "xoxb-123456789012-1234567890123-" + synth(alnum, 24, 10)
	testStripe    = "sk_live_" + synth(alnum, 24, 11)
	testAzureCS   = "Abc8Q~" + synth(alnum+"_~.-", 34, 12)
	testAWSSecret = synth(b64std, 40, 13)
	testAzureKey  = synth(b64std, 86, 14) + "=="
	testGeneric   = synth(alnum, 32, 15)
)

// found returns "type:value" for each finding in text.
func found(text string) []string {
	var out []string
	for _, f := range New().Scan([]byte(text)) {
		out = append(out, f.Type+":"+text[f.Start:f.End])
	}
	return out
}

func TestScan(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // "type:value"; nil means nothing
	}{
		// E-mail.
		{"email", "write to jane.roe@example.com today", []string{"email:jane.roe@example.com"}},
		{"email plus tag and subdomain", "cc: Bob+news@mail.Example.co.uk.", []string{"email:Bob+news@mail.Example.co.uk"}},
		{"email in angle brackets", "From: \"Roe, J\" <j.roe@example.org>", []string{"email:j.roe@example.org"}},
		{"mailto", "mailto:info@example.net", []string{"email:info@example.net"}},
		{"handle is not an email", "ping @alice and @dev-team", nil},
		{"no TLD", "login as root@localhost", nil},
		{"retina image", "use icon@2x.png here", nil},
		{"package version", "npm i lodash@4.17.21 @types/node@20.1.0", nil},

		// Phone numbers.
		{"US parens", "call (415) 555-0132 now", []string{"phone:(415) 555-0132"}},
		{"US dashes", "cell 415-555-0132.", []string{"phone:415-555-0132"}},
		{"US dots", "415.555.0132", []string{"phone:415.555.0132"}},
		{"US +1", "+1 (415) 555-0132", []string{"phone:+1 (415) 555-0132"}},
		{"US 1-800", "1-800-555-0199", []string{"phone:1-800-555-0199"}},
		{"US extension", "(123)456-7890x123 ok", []string{"phone:(123)456-7890x123"}},
		{"US 001", "dial 001-415-555-0132", []string{"phone:001-415-555-0132"}},
		{"UK", "office +44 20 7946 0958", []string{"phone:+44 20 7946 0958"}},
		{"UK (0)", "+44 (0)20 7946 0958", []string{"phone:+44 (0)20 7946 0958"}},
		{"UK national", "ring 020 7946 0958 please", []string{"phone:020 7946 0958"}},
		{"FR", "+33 1 23 45 67 89", []string{"phone:+33 1 23 45 67 89"}},
		{"FR national", "01 23 45 67 89", []string{"phone:01 23 45 67 89"}},
		{"DE", "+49-30-12345678", []string{"phone:+49-30-12345678"}},
		{"JP", "+81 3-1234-5678", []string{"phone:+81 3-1234-5678"}},
		{"IN", "+91 73474 52809", []string{"phone:+91 73474 52809"}},
		{"E.164", "sms to +14155550132", []string{"phone:+14155550132"}},
		{"bare digits with context", "phone: 4155550132", []string{"phone:4155550132"}},
		{"bare digits without context", "reference 4155550132", nil},
		{"date", "on 2024-06-19 and 06/19/2024 and 19.06.2024", nil},
		{"time", "at 09:14:33 and 12:30", nil},
		{"+1 needs ten digits", "+1 415 555 013", nil},
		{"amount", "total $1,234.56 (12.5%)", nil},
		{"order number shaped like a phone", "order #415-555-0132 shipped", nil},
		{"tail of an IBAN is no phone", "NL91 ABNA 0417 1643 01", nil},

		// SSN.
		{"ssn", "SSN 123-45-6789.", []string{"ssn:123-45-6789"}},
		{"ssn in parens", "(219-09-9998)", []string{"ssn:219-09-9998"}},
		{"ssn area 000", "000-12-3456", nil},
		{"ssn area 666", "666-12-3456", nil},
		{"ssn area 9xx", "912-12-3456", nil},
		{"ssn group 00", "123-00-4567", nil},
		{"ssn serial 0000", "123-45-0000", nil},
		{"ssn advertised", "078-05-1120", nil},
		{"ssn too long", "123-45-67890", nil},
		{"ssn compact with context", "social security number 123456789", []string{"ssn:123456789"}},
		{"ssn compact without context", "id 123456789", nil},

		// Payment cards.
		{"visa groups", "card 4111 1111 1111 1111 exp", []string{"payment_card:4111 1111 1111 1111"}},
		{"visa compact", "4242424242424242", []string{"payment_card:4242424242424242"}},
		{"mastercard dashes", "5105-1051-0510-5100", []string{"payment_card:5105-1051-0510-5100"}},
		{"mastercard 2-series", "2223003122003222", []string{"payment_card:2223003122003222"}},
		{"amex 4-6-5", "3782 822463 10005", []string{"payment_card:3782 822463 10005"}},
		{"discover", "6011 0009 9013 9424", []string{"payment_card:6011 0009 9013 9424"}},
		{"jcb", "3530111333300000", []string{"payment_card:3530111333300000"}},
		{"diners 4-6-4", "3056 930902 5904", []string{"payment_card:3056 930902 5904"}},
		{"luhn fails", "4111 1111 1111 1112", nil},
		{"no issuer", "0000 0000 0000 0000", nil},
		{"mixed separators", "4111-1111 1111-1111", nil},
		{"longer digit run", "41111111111111112222", nil},
		{"glued to letters", "ORD4111111111111111", nil},
		{"order id", "ORD-2025-118734 and INV-2024-00042", nil},

		// IBAN.
		{"iban groups", "IBAN DE89 3704 0044 0532 0130 00.", []string{"iban:DE89 3704 0044 0532 0130 00"}},
		{"iban compact", "GB82WEST12345698765432", []string{"iban:GB82WEST12345698765432"}},
		{"iban letters in groups", "GB82 WEST 1234 5698 7654 32", []string{"iban:GB82 WEST 1234 5698 7654 32"}},
		{"iban FR", "FR14 2004 1010 0505 0001 3M02 606", []string{"iban:FR14 2004 1010 0505 0001 3M02 606"}},
		{"iban wrong checksum", "DE89 3704 0044 0532 0130 01", nil},
		{"iban wrong length", "DE89370400440532013", nil},
		{"iban unknown country", "QQ89 3704 0044 0532 0130 00", nil},

		// IP addresses.
		{"ipv4", "server 192.168.1.10 is down", []string{"ipv4:192.168.1.10"}},
		{"ipv4 port", "http://203.0.113.7:8080/health", []string{"ipv4:203.0.113.7"}},
		{"ipv4 end of sentence", "ping 8.8.8.8.", []string{"ipv4:8.8.8.8"}},
		{"ipv4 octet too big", "256.1.2.3", nil},
		{"three parts", "1.2.3", nil},
		{"five parts", "1.2.3.4.5", nil},
		{"v-prefixed version", "v1.2.3.4", nil},
		{"named version", "version 1.2.3.4 and build 6.1.7601.24", nil},
		{"leading zeros", "01.02.03.04", nil},
		{"windows build", "10.0.19041.1288", nil},
		{"ipv6", "host 2001:db8::8a2e:370:7334 up", []string{"ipv6:2001:db8::8a2e:370:7334"}},
		{"ipv6 link local", "fe80::1ff:fe23:4567:890a", []string{"ipv6:fe80::1ff:fe23:4567:890a"}},
		{"mac address", "00:1a:2b:3c:4d:5e", nil},
		{"c++ scope", "std::vector and Abc::Def", nil},

		// Keys and tokens.
		{"aws key id", "aws_access_key_id = " + testAWS, []string{"aws_access_key:" + testAWS}},
		{"aws example key", "AKIAIOSFODNN7EXAMPLE", []string{"aws_access_key:AKIAIOSFODNN7EXAMPLE"}},
		{"aws placeholder", "AKIAXXXXXXXXXXXXXXXX", nil},
		{"aws too short", "AKIAIOSFODNN7EXAMPL", nil},
		{"aws glued", "xAKIAIOSFODNN7EXAMPLE", nil},
		{"aws secret", "aws_secret_access_key=" + testAWSSecret, []string{"aws_secret_key:" + testAWSSecret}},
		{"gcp", "key=" + testGCP, []string{"gcp_api_key:" + testGCP}},
		{"github", "token " + testGitHub + ".", []string{"github_token:" + testGitHub}},
		{"github in url", "https://" + testGitHub + "@github.com/o/r.git", []string{"github_token:" + testGitHub}},
		{"slack", testSlack, []string{"slack_token:" + testSlack}},
		{"stripe", "STRIPE=" + testStripe, []string{"stripe_key:" + testStripe}},
		{"stripe publishable", "pk_live_" + synth(alnum, 24, 20), nil},
		{"openai legacy", "key " + testOpenAI, []string{"openai_key:" + testOpenAI}},
		{"openai project", `api_key="` + testOpenAIPrj + `"`, []string{"openai_key:" + testOpenAIPrj}},
		{"anthropic", "x-api-key: " + testAnthropic, []string{"anthropic_key:" + testAnthropic}},
		{"scikit-learn", "pip install sk-learn", nil},
		{"openai placeholder", "sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", nil},
		{"azure client secret", "secret " + testAzureCS, []string{"azure_client_secret:" + testAzureCS}},
		{"azure account key", "AccountName=acct;AccountKey=" + testAzureKey + ";EndpointSuffix=core.windows.net", []string{"azure_key:" + testAzureKey}},
		{"jwt", "Authorization: Bearer " + testJWT, []string{"jwt:" + testJWT}},
		{"jwt in query", "?access_token=" + testJWT + "&x=1", []string{"jwt:" + testJWT}},
		{"jwt header not json", synth(b64url, 20, 30) + "." + synth(b64url, 30, 31) + "." + synth(b64url, 43, 32), nil},
		{"eyJ but not json", "eyJ" + synth(alnum, 20, 33) + "." + synth(alnum, 20, 34) + "." + synth(alnum, 43, 35), nil},
		{"bearer", "Authorization: Bearer " + testGeneric, []string{"bearer_token:" + testGeneric}},
		{"bearer placeholder", "Authorization: Bearer YOUR_API_TOKEN_HERE", nil},
		{"basic", "Authorization: Basic dXNlcjpwYXNzd29yZDEyMw==", []string{"basic_auth:dXNlcjpwYXNzd29yZDEyMw=="}},
		{"generic assigned", "api_key=" + testGeneric, []string{"api_key:" + testGeneric}},
		{"generic json", `{"client_secret": "` + testGeneric + `"}`, []string{"api_key:" + testGeneric}},
		{"generic from env", "api_key = os.environ['OPENAI_API_KEY']", nil},
		{"high entropy without keyword", "commit " + testGeneric, nil},
		{"uuid without keyword", "request 3f2c9a1e-77b0-4c1e-9d3a-5b8e0f6a2c41", nil},
		{"sha256 without keyword", "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", nil},
		{"password", "password: Tr0ub4dor&3", []string{"password:Tr0ub4dor&3"}},
		{"password placeholder", "password=changeme123", nil},
		{"password in prose", "the password field is required", nil},

		// Private keys.
		{"pem header only", "starts with -----BEGIN RSA PRIVATE KEY----- and more", []string{"private_key:-----BEGIN RSA PRIVATE KEY-----"}},
		{"pem block", "k:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nAB==\n-----END PRIVATE KEY-----\nthanks",
			[]string{"private_key:-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nAB==\n-----END PRIVATE KEY-----"}},
		{"pem one line", "-----BEGIN EC PRIVATE KEY----- MHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49 -----END EC PRIVATE KEY-----",
			[]string{"private_key:-----BEGIN EC PRIVATE KEY----- MHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49 -----END EC PRIVATE KEY-----"}},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----", nil},
		{"public key", "-----BEGIN PUBLIC KEY-----", nil},

		// Several in one text, and prose.
		{"mixed", "Contact jane@example.com or +1 415-555-0132; IBAN DE89370400440532013000.",
			[]string{"email:jane@example.com", "phone:+1 415-555-0132", "iban:DE89370400440532013000"}},
		{"prose", "We shipped release 2.14.3 on March 3, 2026; order ORD-2025-118734 was refunded ($249.00).", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := found(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("Scan(%q)\n got  %q\n want %q", tt.text, got, tt.want)
			}
		})
	}
}

// TestScanInvariants checks what every result must satisfy, over texts
// built from the test values glued together in many ways.
func TestScanInvariants(t *testing.T) {
	parts := []string{"jane@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", testAWS, testJWT,
		"DE89 3704 0044 0532 0130 00", "10.0.0.1", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\n",
		"api_key=" + testGeneric, "2024-06-19", "v1.2.3.4", " ", "\n", ",", "(", ")", "=", ":", "-", "\u00e9"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b strings.Builder
		for range r.IntN(8) + 1 {
			b.WriteString(parts[r.IntN(len(parts))])
		}
		checkInvariants(t, []byte(b.String()))
	}
}

func checkInvariants(t *testing.T, text []byte) {
	t.Helper()
	fs := New().Scan(text)
	end := 0
	for _, f := range fs {
		if f.Start < end || f.Start >= f.End || f.End > len(text) {
			t.Fatalf("Scan(%q): bad span %d..%d after %d in %+v", text, f.Start, f.End, end, fs)
		}
		if f.Guard != GuardName || f.Type == "" || (f.Class != guard.ClassPII && f.Class != guard.ClassSecret) || f.Score <= 0 || f.Score > 1 {
			t.Fatalf("Scan(%q): bad finding %+v", text, f)
		}
		end = f.End
	}
	if h := New().Hold(text); h < 0 || h > len(text) {
		t.Fatalf("Hold(%q) = %d", text, h)
	}
}

func TestHold(t *testing.T) {
	tests := []struct {
		text string
		want string // the held suffix
	}{
		{"hello world", "world"},
		{"hello world ", ""},
		{"card 4111 1111 ", "4111 1111 "},
		{"card 4111 1111 11", "4111 1111 11"},
		{"call +44 20 ", "+44 20 "},
		{"call (415) ", "(415) "},
		{"pay to GB82 WEST ", "GB82 WEST "},
		{"mail me at jane@exa", "jane@exa"},
		{"card 4111 1111 1111 1111 is", "is"},
		{"done.\n", ""},
		{"key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\n", "-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\n"},
		{"-----BEGIN RSA PRI", "-----BEGIN RSA PRI"},
		{"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\nok ", ""},
		{"-----BEGIN CERTIFICATE-----\n", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.text), func(t *testing.T) {
			h := New().Hold([]byte(tt.text))
			if got := tt.text[len(tt.text)-h:]; got != tt.want {
				t.Errorf("Hold(%q) holds %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestCardValidity(t *testing.T) {
	tests := []struct {
		num  string
		want bool
	}{
		{"4111111111111111", true}, {"4222222222222", true}, {"5555555555554444", true},
		{"378282246310005", true}, {"6011111111111117", true}, {"3530111333300000", true},
		{"30569309025904", true}, {"4111111111111112", false}, {"378282246310005" + "0", false},
		{"5555555555554444" + "4", false}, {"9999999999999995", false},
	}
	for _, tt := range tests {
		if got := validCard([]byte(tt.num)); got != tt.want {
			t.Errorf("validCard(%s) = %v, want %v", tt.num, got, tt.want)
		}
	}
}

func TestMod97(t *testing.T) {
	for _, s := range []string{"DE89370400440532013000", "GB82WEST12345698765432", "NL91ABNA0417164300", "FR1420041010050500013M02606"} {
		if !mod97([]byte(s)) {
			t.Errorf("mod97(%s) = false", s)
		}
		bad := []byte(s)
		bad[len(bad)-1] ^= 1
		if mod97(bad) {
			t.Errorf("mod97(%s) = true", bad)
		}
	}
}

func TestBoring(t *testing.T) {
	for c := 0; c < 256; c++ {
		block := []byte("aaaaaaaa")
		for pos := range 8 {
			block[pos] = byte(c)
			x := uint64(block[0]) | uint64(block[1])<<8 | uint64(block[2])<<16 | uint64(block[3])<<24 |
				uint64(block[4])<<32 | uint64(block[5])<<40 | uint64(block[6])<<48 | uint64(block[7])<<56
			want := !(c >= '0' && c <= 'Z' || c == '_' || c == '-')
			if got := boring(x); got != want {
				t.Fatalf("boring with %#x at %d = %v, want %v", c, pos, got, want)
			}
			block[pos] = 'a'
		}
	}
}
