package behavior

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// table is a bounded set of states in shards. Each shard keeps its states
// in fixed-size chunks (never moved, never scanned by the garbage
// collector: a state holds no pointer) indexed by a map from key to slot.
// At the bound, the least recently seen of a few sampled states is evicted
// (approximate LRU, as Redis does), preferring states without risk.
type table struct {
	shards [numShards]shard
	count  atomic.Int64 // states kept, over all shards
	max    int64
}

const (
	numShards   = 64
	chunkStates = 256
	evictSample = 8
)

const stateSize = unsafe.Sizeof(state{})

type shard struct {
	mu     sync.Mutex
	idx    map[uint64]int32
	chunks [][]state
	free   []int32
	used   int32 // slots handed out (free ones included)
	rnd    uint64
	_      [64]byte // keep shards on separate cache lines
}

func (t *table) init(maxStates int) {
	t.max = int64(maxStates)
	for i := range t.shards {
		t.shards[i].idx = map[uint64]int32{}
		t.shards[i].rnd = uint64(i)*0x9E3779B97F4A7C15 | 1
	}
}

func (t *table) shard(key uint64) *shard { return &t.shards[key>>58] }

func (t *table) len() int { return int(t.count.Load()) }

// sweep frees the states last seen before cutoff and returns how many.
func (t *table) sweep(cutoff int64) int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for key, slot := range sh.idx {
			if sh.at(slot).lastSeen < cutoff {
				sh.release(key, slot)
				t.count.Add(-1)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

func (sh *shard) at(slot int32) *state {
	return &sh.chunks[slot/chunkStates][slot%chunkStates]
}

// get returns the state of key, creating it (zeroed, fresh) if needed and
// evicting another when the table is full. now is unix seconds. The caller
// holds sh.mu.
func (sh *shard) get(t *table, key uint64, now int64) (st *state, fresh, evicted bool) {
	if sh.idx == nil { // a disabled table
		return &state{}, true, false
	}
	if slot, ok := sh.idx[key]; ok {
		st = sh.at(slot)
		st.lastSeen = now
		return st, false, false
	}
	// The bound is global; the victim is taken from this shard (whose lock
	// is held), so a shard with no state yet may briefly exceed it.
	if t.count.Load() >= t.max && len(sh.idx) > 0 {
		sh.evict(now)
		evicted = true
	} else {
		t.count.Add(1)
	}
	var slot int32
	if n := len(sh.free); n > 0 {
		slot, sh.free = sh.free[n-1], sh.free[:n-1]
	} else {
		if sh.used%chunkStates == 0 {
			sh.chunks = append(sh.chunks, make([]state, chunkStates))
		}
		slot = sh.used
		sh.used++
	}
	sh.idx[key] = slot
	st = sh.at(slot)
	*st = state{key: key, lastSeen: now, firstSeen: now}
	return st, true, evicted
}

// evict frees one state: of evictSample sampled states, the least recently
// seen among those without risk (or among all, if every one has risk).
func (sh *shard) evict(now int64) {
	var victim, fallback int32 = -1, -1
	for tries := 0; tries < 4*evictSample && (victim < 0 || tries < evictSample); tries++ {
		sh.rnd ^= sh.rnd << 13
		sh.rnd ^= sh.rnd >> 7
		sh.rnd ^= sh.rnd << 17
		slot := int32(sh.rnd % uint64(sh.used))
		st := sh.at(slot)
		if st.key == 0 {
			continue
		}
		if fallback < 0 || st.lastSeen < sh.at(fallback).lastSeen {
			fallback = slot
		}
		if st.risk == 0 || now-st.riskAt/1e9 > 7*24*3600 {
			if victim < 0 || st.lastSeen < sh.at(victim).lastSeen {
				victim = slot
			}
		}
	}
	if victim < 0 {
		victim = fallback
	}
	if victim < 0 { // only free slots sampled: take any
		for key, slot := range sh.idx {
			sh.release(key, slot)
			return
		}
		return
	}
	sh.release(sh.at(victim).key, victim)
}

func (sh *shard) release(key uint64, slot int32) {
	delete(sh.idx, key)
	*sh.at(slot) = state{}
	sh.free = append(sh.free, slot)
}
