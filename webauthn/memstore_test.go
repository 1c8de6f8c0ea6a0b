package webauthn_test

import (
	"testing"

	"github.com/fidokit/fidokit/store/storetest"
	"github.com/fidokit/fidokit/webauthn"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) webauthn.Store { return webauthn.NewMemoryStore() })
}

func TestMemoryStoreShared(t *testing.T) {
	s := webauthn.NewMemoryStore()
	storetest.RunShared(t, s, s)
}
