"""multiprocessing.Queue round trips for bench/shm.mjs: `python3 shm-queue.py <round trips>`.

A child echoes what it gets; prints microseconds per round trip (put, child get+put, get).
"""
import multiprocessing as mp
import sys
import time


def echo(q_in, q_out, n):
    for _ in range(n):
        q_out.put(q_in.get())


if __name__ == "__main__":
    n = int(sys.argv[1])
    ctx = mp.get_context("fork")
    q_in, q_out = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=echo, args=(q_in, q_out, n + 100))
    p.start()
    for i in range(100):  # warm up: the feeder threads and the child running
        q_in.put(i)
        q_out.get()
    t0 = time.perf_counter()
    for i in range(n):
        q_in.put(i)
        q_out.get()
    print(f"{(time.perf_counter() - t0) / n * 1e6:.2f}")
    p.join()
