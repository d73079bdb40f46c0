"""Runs KIS's official WebSocket sample client (kis_auth.KISWebSocket with
domestic_stock_functions_ws.ccnl_krx and asking_price_krx, copied unmodified
next to this file by scripts/kis-official-ws.sh) against kisfeed's emulator.

The shims only adapt module names on Debian: pycryptodome installs as
Cryptodome, and websockets 10.4 calls the client connection class
WebSocketClientProtocol (the samples annotate with websockets.ClientConnection).
It prints one JSON line (records per TR, the last rows' column counts) once
FRAMES records of both TRs arrived, then exits.
"""
import collections
import json
import os
import sys

import Cryptodome
import Cryptodome.Cipher
import Cryptodome.Util
import Cryptodome.Util.Padding

sys.modules.setdefault("Crypto", Cryptodome)
sys.modules.setdefault("Crypto.Cipher", Cryptodome.Cipher)
sys.modules.setdefault("Crypto.Util", Cryptodome.Util)
sys.modules.setdefault("Crypto.Util.Padding", Cryptodome.Util.Padding)
import websockets
import websockets.client

if not hasattr(websockets, "ClientConnection"):
    websockets.ClientConnection = websockets.client.WebSocketClientProtocol

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kis_auth as ka  # noqa: E402
from domestic_stock_functions_ws import asking_price_krx, ccnl_krx  # noqa: E402

WANT = int(os.environ.get("FRAMES", "20"))
seen = collections.Counter()
last = []


def on_result(ws, tr_id, df, dm):
    seen[tr_id] += len(df)
    row = df.iloc[-1].to_dict()
    keys = list(row)[:4] + (["ACML_VOL"] if tr_id == "H0STCNT0" else ["ASKP10", "BIDP10"])
    last.append({"tr_id": tr_id, "columns": len(df.columns), "row": {k: row[k] for k in keys}})
    if sum(seen.values()) >= WANT and seen["H0STCNT0"] and seen["H0STASP0"]:
        print(json.dumps({"records_by_tr": seen, "last": last[-4:]}, ensure_ascii=False, default=str))
        sys.stdout.flush()
        os._exit(0)


ka.auth(svr="prod")
ka.auth_ws(svr="prod")
kws = ka.KISWebSocket(api_url="/tryitout")
kws.subscribe(request=asking_price_krx, data=["005930"])
kws.subscribe(request=ccnl_krx, data=["005930", "000660"])
kws.start(on_result=on_result)
