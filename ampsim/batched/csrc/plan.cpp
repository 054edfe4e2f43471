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

using Item = std::pair<double, int64_t>;   // (arrival, msg_id)

// A calendar: the heap holds the copies of the current time bucket (bucket = floor(arrival * inv),
// monotone in the arrival, so the pop order is the one heap's); later ones wait in a ring of buckets
// (a copy arrives at most `high` after the current time: within NB buckets). A bucket's vector and
// the heap's swap storage when the bucket becomes current, so their capacity is reused.
struct State {
    MT rng;
    std::vector<Item> heap;
    std::vector<std::vector<Item>> ring;
    int64_t cur = 0, waiting = 0, next_id = 0;
    std::vector<int32_t> c_dst, c_cause;
};

constexpr int64_t NB = 516;

}  // namespace

extern "C" void ampsim_plan_free(void* state) { delete static_cast<State*>(state); }

extern "C" int ampsim_plan_uniform(PlanArgs* a) {
    State* st = static_cast<State*>(a->state);
    if (!st) {
        st = new State();
        a->state = st;
        for (int i = 0; i < 624; ++i) st->rng.mt[i] = a->mt[i];
        st->rng.idx = static_cast<int>(a->mt_pos);
        st->ring.resize(NB);
        for (int64_t j = 0; j < a->k; ++j) {
            st->heap.emplace_back(0.0, j);
            st->c_dst.push_back(static_cast<int32_t>(a->starts[j]));
            st->c_cause.push_back(-1);
        }
        std::make_heap(st->heap.begin(), st->heap.end(), std::greater<Item>());
        st->next_id = a->k;
        std::fill(a->last, a->last + a->n, -1);
        a->done = 0;
        a->err_msg = -1;
        const size_t expect = static_cast<size_t>(std::min<int64_t>(a->budget, int64_t(1) << 24));
        st->c_dst.reserve(3 * expect);
        st->c_cause.reserve(3 * expect);
    }
    MT& rng = st->rng;
    std::vector<Item>& heap = st->heap;
    const std::greater<Item> later;
    const double width = a->high - a->low;
    const double inv = 512.0 / a->high;
    int64_t done = a->done, next_id = st->next_id;
    int rc = 0;
    while (done < a->budget) {
        if (heap.empty()) {
            if (!st->waiting) break;
            do { ++st->cur; } while (st->ring[st->cur % NB].empty());
            std::vector<Item>& bk = st->ring[st->cur % NB];
            st->waiting -= static_cast<int64_t>(bk.size());
            heap.swap(bk);
            std::make_heap(heap.begin(), heap.end(), later);
        }
        if (done == a->cap) {
            rc = 2;
            break;
        }
        std::pop_heap(heap.begin(), heap.end(), later);
        const Item top = heap.back();
        heap.pop_back();
        const double t = top.first;
        const int64_t mid = top.second;
        const int32_t v = st->c_dst[mid], cause = st->c_cause[mid], p = a->last[v];
        const int32_t lc = cause >= 0 ? a->level[cause] : -1;
        const int32_t lp = p >= 0 ? a->level[p] : -1;
        a->node[done] = v;
        a->msg_id[done] = mid;
        a->cause[done] = cause;
        a->prev[done] = p;
        a->slot[done] = mid < a->k ? static_cast<int32_t>(a->slot_base + mid) : -1;
        a->src[done] = cause >= 0 ? a->node[cause] : -1;
        a->time[done] = t;
        a->level[done] = 1 + (lc > lp ? lc : lp);
        a->last[v] = static_cast<int32_t>(done);
        for (int64_t e = a->indptr[v]; e < a->indptr[v + 1]; ++e) {
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
            if (b <= st->cur) {
                heap.emplace_back(ta, next_id);
                std::push_heap(heap.begin(), heap.end(), later);
            } else {
                st->ring[b % NB].emplace_back(ta, next_id);
                ++st->waiting;
            }
            st->c_dst.push_back(static_cast<int32_t>(a->indices[e]));
            st->c_cause.push_back(static_cast<int32_t>(done));
            ++next_id;
        }
        if (a->err_msg >= 0) {
            rc = 1;
            break;
        }
        ++done;
    }
    st->next_id = next_id;
    a->done = done;
    a->sent = next_id;
    return rc;
}
