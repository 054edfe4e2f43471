// The planner's uniform-delay run (msg_id ties, no FIFO) in compiled code: the same event loop as
// ampsim/batched/planner.py's _plan_uniform, delivery for delivery (tested against it).
//
// Deliveries are processed in increasing (arrival, msg_id); every processed delivery broadcasts one
// copy per neighbour (ascending), msg_ids in send order, each copy's delay drawn in msg_id order from
// Python's random.Random (MT19937, random() = 53-bit draw from two 32-bit words), whose state the
// caller passes: d = 1 - random() for U(0, 1], else high - (high - low) * random(). The products are
// kept apart from the sums (no fused multiply-add) so that every arrival time equals Python's.
//
// The schedule's columns are written straight into the caller's arrays in their final types (int32
// rows, int64 msg_id, float64 time), with each delivery's sender and start slot and each node's last
// delivery, so nothing is converted or recomputed in Python. When the arrays are full before the
// budget, the call returns 2 and keeps its state: the caller passes larger arrays holding the rows so
// far and calls again (the run goes on where it stopped).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace {

struct MT {
    uint32_t mt[624];
    int idx;
    uint32_t next() {
        if (idx >= 624) {
            for (int k = 0; k < 624; ++k) {
                uint32_t y = (mt[k] & 0x80000000u) | (mt[(k + 1) % 624] & 0x7fffffffu);
                mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
            }
            idx = 0;
        }
        uint32_t y = mt[idx++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }
    double random() {
        uint32_t a = next() >> 5, b = next() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }
};

struct PlanArgs {
    int64_t n, k, budget;
    const int64_t* indptr;   // (n + 1,)
    const int64_t* indices;  // neighbours, ascending per node
    const int64_t* starts;   // (k,) start nodes in engine order (msg_ids 0..k-1)
    const uint32_t* mt;      // (624,) Python's Mersenne Twister state
    int64_t mt_pos;
    int64_t unit;            // 1: d = 1 - random(); 0: d = high - (high - low) * random()
    double low, high;
    int64_t slot_base;       // the start slot of msg_id 0
    int64_t cap;             // rows the output arrays hold
    // outputs, (cap,) each; rows 0..done-1 are the deliveries so far
    int32_t* node;
    int64_t* msg_id;
    int32_t* cause;
    int32_t* prev;
    int32_t* slot;
    int32_t* src;
    int32_t* level;
    double* time;
    int32_t* last;           // (n,) each node's last delivery (-1: none)
    void* state;             // null on the first call; ampsim_plan_free(state) after the last
    // results
    int64_t done, sent;
    int64_t err_msg;         // -1, or the msg_id of a copy that would arrive at its send time
    double err_t, err_d;
};

// A copy in flight: (arrival, sender delivery, index within the sender's broadcast); a start copy has
// sender -1 and its start index. Ordered by (arrival, sender, index), which is (arrival, msg_id): msg_ids
// are given in send order, i.e. by sender in processing order, then by neighbour.
struct Item {
    double t;
    int32_t cause, j;
    bool operator>(const Item& o) const {
        return t != o.t ? t > o.t : cause != o.cause ? cause > o.cause : j > o.j;
    }
};

// A calendar: the heap holds the copies of the current time bucket (bucket = floor(arrival * inv),
// monotone in the arrival, so the pop order is the one heap's); later ones wait in a ring of buckets
// (a copy arrives at most `high` after the current time: within NB buckets). A bucket's vector and
// the heap's swap storage when the bucket becomes current, so their capacity is reused.
//
// Copies that cannot be delivered within the budget are not kept: when the copies in the buckets before
// bucket `stop` are at least the deliveries left, every remaining delivery takes one of them (each
// takes the earliest copy, and those arrive before anything in `stop` or later), so the copies of
// `stop` and later buckets are dropped (still sent: their msg_ids and draws count). Without this a run
// whose copies multiply (PubMed: 22 copies sent per delivery) keeps every copy sent until the budget.
struct State {
    MT rng;
    std::vector<Item> heap;
    std::vector<std::vector<Item>> ring;
    int64_t cur = 0, next_id = 0;
    bool capped = false;     // until then every copy is kept (stop = cur + NB)
    int64_t stop = 0;        // once capped: copies of buckets >= stop are dropped
    int64_t before = 0;      // copies kept in buckets cur..stop-1 (the heap included)
    std::vector<int64_t> first;   // per delivery: the msg_id of its first copy
};

constexpr int64_t NB = 516;

}  // namespace

extern "C" void ampsim_plan_free(void* state) { delete static_cast<State*>(state); }

extern "C" int ampsim_plan_uniform(PlanArgs* a) {
    State* st = static_cast<State*>(a->state);
    const std::greater<Item> later;
    if (!st) {
        st = new State();
        a->state = st;
        for (int i = 0; i < 624; ++i) st->rng.mt[i] = a->mt[i];
        st->rng.idx = static_cast<int>(a->mt_pos);
        st->ring.resize(NB);
        for (int64_t j = 0; j < a->k; ++j) st->heap.push_back(Item{0.0, -1, static_cast<int32_t>(j)});
        std::make_heap(st->heap.begin(), st->heap.end(), later);
        st->next_id = a->k;
        st->before = a->k;
        std::fill(a->last, a->last + a->n, -1);
        a->done = 0;
        a->err_msg = -1;
        st->first.reserve(static_cast<size_t>(std::min<int64_t>(a->budget, int64_t(1) << 24)));
    }
    MT& rng = st->rng;
    std::vector<Item>& heap = st->heap;
    const double width = a->high - a->low;
    const double inv = 512.0 / a->high;
    int64_t done = a->done, next_id = st->next_id;
    int rc = 0;
    while (done < a->budget) {
        if (heap.empty()) {
            if (!st->before) break;   // nothing kept before `stop`: nothing is in flight
            do { ++st->cur; } while (st->ring[st->cur % NB].empty());
            heap.swap(st->ring[st->cur % NB]);
            std::make_heap(heap.begin(), heap.end(), later);
        }
        if (done == a->cap) {
            rc = 2;
            break;
        }
        std::pop_heap(heap.begin(), heap.end(), later);
        const Item top = heap.back();
        heap.pop_back();
        --st->before;
        const double t = top.t;
        const int32_t cause = top.cause;
        const int64_t mid = cause >= 0 ? st->first[cause] + top.j : top.j;
        const int32_t v = static_cast<int32_t>(cause >= 0 ? a->indices[a->indptr[a->node[cause]] + top.j]
                                                          : a->starts[top.j]);
        const int32_t p = a->last[v];
        const int32_t lc = cause >= 0 ? a->level[cause] : -1;
        const int32_t lp = p >= 0 ? a->level[p] : -1;
        a->node[done] = v;
        a->msg_id[done] = mid;
        a->cause[done] = cause;
        a->prev[done] = p;
        a->slot[done] = cause < 0 ? static_cast<int32_t>(a->slot_base + top.j) : -1;
        a->src[done] = cause >= 0 ? a->node[cause] : -1;
        a->time[done] = t;
        a->level[done] = 1 + (lc > lp ? lc : lp);
        a->last[v] = static_cast<int32_t>(done);
        st->first.push_back(next_id);
        const int64_t e0 = a->indptr[v], e1 = a->indptr[v + 1];
        for (int64_t e = e0; e < e1; ++e) {
            const double u = rng.random();
            double d;
            if (a->unit) {
                d = 1.0 - u;
            } else {
                volatile double wu = width * u;   // rounded on its own, as Python's high - width * u
                d = a->high - wu;
            }
            const double ta = t + d;
            if (!(ta > t)) {
                a->err_msg = next_id;
                a->err_t = t;
                a->err_d = d;
                break;
            }
            const int64_t b = static_cast<int64_t>(ta * inv);
            const Item it{ta, static_cast<int32_t>(done), static_cast<int32_t>(e - e0)};
            if (b <= st->cur) {
                heap.push_back(it);
                std::push_heap(heap.begin(), heap.end(), later);
                ++st->before;
            } else if (!st->capped || b < st->stop) {
                st->ring[b % NB].push_back(it);
                ++st->before;
            }
            ++next_id;
        }
        if (a->err_msg >= 0) {
            rc = 1;
            break;
        }
        ++done;
        // lower `stop` while the buckets before its last one still hold a copy for every delivery left
        const int64_t left = a->budget - done;
        if (!st->capped && st->before >= left) {
            st->capped = true;
            st->stop = st->cur + NB;
        }
        while (st->capped && st->stop - 1 > st->cur) {
            std::vector<Item>& bk = st->ring[(st->stop - 1) % NB];
            if (st->before - static_cast<int64_t>(bk.size()) < left) break;
            st->before -= static_cast<int64_t>(bk.size());
            std::vector<Item>().swap(bk);
            --st->stop;
        }
    }
    st->next_id = next_id;
    a->done = done;
    a->sent = next_id;
    return rc;
}
