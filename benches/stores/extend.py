#!/usr/bin/env python3
"""Builds the large stores of the whole-process view measurements
(docs/performance.md, "Whole process: views") from a store that `t-minus
apply` built, copying its rows with new ids:

    extend.py SRC DST N campaign   # campaign `big` of SRC grown to N events:
                                   # e{i} copies e{i % 1000}, chains of 100
    extend.py SRC DST N solo       # N standalone pending events, one second
                                   # apart, copies of SRC's `big/e0`

SRC is the store of `t-minus apply` of the 1,000-event manifest of
benches/processes.rs (campaign `big`, 3 attendees, quorum 2, chains of 100).
Copied attendees are open (`attendees.open` defaults to 1): every copied
event is blocked or pending. The rows are written through SQLite directly: the manifest parser's node
limit refuses one 100,000-event manifest, and scheduling 100,000 events one
process each would take an hour.
"""
import sqlite3, uuid, shutil, sys
def clone(src, dst, n, standalone):
    shutil.copy(src, dst)
    db = sqlite3.connect(dst)
    cols = [r[1] for r in db.execute("PRAGMA table_info(events)")]
    rows = {r[cols.index('name')]: r for r in db.execute("SELECT * FROM events")}
    att = {}
    for r in db.execute("SELECT event_id, agent, position, status FROM attendees"):
        att.setdefault(r[0], []).append(r)
    ids = {name: r[0] for name, r in rows.items()}
    camp = rows['e0'][cols.index('campaign_id')]
    ci = {c: i for i, c in enumerate(cols)}
    q = "INSERT INTO events (%s) VALUES (%s)" % (",".join(cols), ",".join("?"*len(cols)))
    if standalone:
        db.execute("DELETE FROM edges"); db.execute("DELETE FROM audit")
        db.execute("DELETE FROM attendees"); db.execute("DELETE FROM events")
        db.execute("DELETE FROM campaigns")
    start = 0 if standalone else 1000
    for i in range(start, n):
        t = list(rows['e0' if standalone else 'e%d' % (i % 1000)])
        eid = uuid.uuid4().bytes  # ids are stored as their 16 bytes
        t[ci['id']] = eid
        if standalone:
            t[ci['campaign_id']] = None; t[ci['campaign_pos']] = None; t[ci['name']] = None
            t[ci['at_ms']] = t[ci['start_ms']] + t[ci['offset_ms']] + i * 1000; t[ci['offset_ms']] = None; t[ci['fire_ms']] += i * 1000
        else:
            t[ci['name']] = 'e%d' % i; t[ci['campaign_pos']] = i + 1
        db.execute(q, t)
        for (_, agent, pos, status) in att[rows['e0'][0] if standalone else ids['e%d' % (i % 1000)]]:
            db.execute("INSERT INTO attendees (event_id, agent, position, status) VALUES (?,?,?,?)", (eid, agent, pos, status))
        ids['e%d' % i] = eid
        if not standalone and i % 100:
            db.execute("INSERT INTO edges (campaign_id, from_id, to_id) VALUES (?,?,?)", (camp, ids['e%d' % (i-1)], eid))
    db.commit()
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
clone(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == 'solo')
