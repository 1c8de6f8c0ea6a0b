package webauthn

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memberBodies are bodies for the duplicate-member check: the shapes of
// the handler's requests, duplicates at every depth and in every case,
// and names the byte scan leaves to encoding/json.
var memberBodies = []string{
	`{}`, `[]`, `"x"`, `1`, `null`, ` {"name":"alice@example.com"} `,
	`{"name":"nobody@example.com","name":"alice@example.com"}`,
	`{"name":"alice@example.com","NAME":"nobody@example.com"}`,
	`{"challengeId":"abc","credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA","userHandle":null},"clientExtensionResults":{}}}`,
	`{"challengeId":"abc","credential":{"id":"AAAA","ID":"BBBB"}}`,
	`{"credential":{"x":[{"a":1,"A":2}]}}`,
	`{"a":{"b":1},"b":{"a":1}}`,
	`[{"a":1},{"a":1}]`,
	`{"a":[1,2,{"b":[true,false,null,-1.5e3]}],"b":"\"a\":1"}`,
	`{"a\u0041":1,"aa":2}`,
	"{\"\u212a\":1,\"k\":2}",
	"{\"\u017f\":1,\"S\":2}",
	`{"a":"é","é":1,"É":2}`,
	`{"a":1}{"a":1,"a":2}`,
	`{"a":1,}`, `{"a" 1}`, `{"a":}`, `[1,]`, `{"a":1`, `"open`,
	strings.Repeat(`[`, 100) + `{"a":1,"a":2}` + strings.Repeat(`]`, 100),
	strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70),
	manyMembers(16, -1), manyMembers(17, 16), manyMembers(40, 3), manyMembers(40, 39), manyMembers(100, -1),
}

// manyMembers is an object of n members named m0, m1, ..., with member
// dup named as the first (in upper case), if dup is not negative.
func manyMembers(n, dup int) string {
	var sb strings.Builder
	sb.WriteString("{")
	for i := range n {
		if i > 0 {
			sb.WriteString(",")
		}
		name := fmt.Sprintf("m%d", i)
		if i == dup {
			name = "M0"
		}
		fmt.Fprintf(&sb, "%q:%d", name, i)
	}
	sb.WriteString("}")
	return sb.String()
}

// TestCheckDuplicateMembers checks the byte scan against encoding/json's
// tokens on memberBodies.
func TestCheckDuplicateMembers(t *testing.T) {
	for _, b := range memberBodies {
		checkMembersAgree(t, []byte(b))
	}
	assert.Error(t, checkDuplicateMembers([]byte(manyMembers(17, 16))))
	assert.Error(t, checkDuplicateMembers([]byte("{\"\u212a\":1,\"k\":2}")), "the Kelvin sign folds onto k")
	assert.NoError(t, checkDuplicateMembers([]byte(manyMembers(100, -1))))
}

// FuzzCheckDuplicateMembers checks that on valid JSON the byte scan, when
// it decides, decides as encoding/json's tokens do.
func FuzzCheckDuplicateMembers(f *testing.F) {
	for _, b := range memberBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkMembersAgree(t, b) })
}

func checkMembersAgree(t *testing.T, b []byte) {
	t.Helper()
	slow := slowDuplicateMembers(b)
	got := checkDuplicateMembers(b)
	if !json.Valid(b) {
		// Invalid JSON fails in the decoder, whatever the check said.
		return
	}
	if slow == nil {
		require.NoError(t, got, "%q", b)
		return
	}
	require.Error(t, got, "%q", b)
	s := memberScan{jsonScan: jsonScan{b: b}}
	if decided, err := s.value(); decided && s.end() {
		assert.Equal(t, slow.Error(), err.Error(), "%q", b)
	}
}
