package token

// CacheLen is the number of cached signatures, for tests.
func (v *Verifier) CacheLen() int { return v.cache.len() }
