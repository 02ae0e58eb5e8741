// The pages' one stylesheet, served from the gateway itself (CSP style-src 'self'); its URL
// carries a hash of its text, so it can be cached for a year and a new version is fetched anew.
import { createHash } from 'node:crypto';

export const CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2430;background:#f5f6f8}
header{display:flex;gap:1.5rem;align-items:center;padding:.6rem 1.2rem;background:#1d2430;color:#fff}
header nav{display:flex;gap:1rem;flex:1}
header a,header .link{color:#cfd8e6;text-decoration:none}
header a:hover,header .link:hover{color:#fff}
main{max-width:72rem;margin:0 auto;padding:1rem 1.2rem 3rem}
h1{font-size:1.4rem;margin:.6rem 0 1rem}
h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
table{border-collapse:collapse;width:100%;background:#fff;margin:.4rem 0}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e4e7ec;vertical-align:top}
th{font-weight:600;color:#556}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:.4rem 0}
.card{background:#fff;padding:.7rem 1rem;border:1px solid #e4e7ec;border-radius:6px;min-width:10rem}
.card .v{font-size:1.3rem;font-weight:600}
.card .k{color:#667;font-size:.85rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:.8rem}
figure{margin:0;background:#fff;border:1px solid #e4e7ec;border-radius:6px;padding:.5rem .7rem}
figcaption{font-weight:600;margin-bottom:.3rem}
svg.chart{width:100%;height:auto;display:block}
svg.chart .bar{fill:#3b6fd8}
svg.chart .bar:hover{fill:#1d47a0}
svg.chart .axis{stroke:#c5cbd5}
svg.chart text{font-size:10px;fill:#667}
form.inline{display:inline}
form.stack{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.4rem 0;background:#fff;padding:.6rem;border:1px solid #e4e7ec;border-radius:6px}
label{display:flex;flex-direction:column;font-size:.85rem;color:#556;gap:.15rem}
input,select,button{font:inherit;padding:.3rem .5rem;border:1px solid #b8c0cc;border-radius:4px;background:#fff}
button{background:#3b6fd8;color:#fff;border-color:#3b6fd8;cursor:pointer}
button.danger{background:#c2352b;border-color:#c2352b}
button.link{background:none;border:none;padding:0;cursor:pointer}
.notice{background:#e6f4ea;border:1px solid #a8d5b5;padding:.5rem .8rem;border-radius:4px}
.error{background:#fdecea;border:1px solid #f1b0a9;padding:.5rem .8rem;border-radius:4px}
.secret{font:1rem ui-monospace,monospace;background:#fff8d6;border:1px solid #e8d27a;padding:.6rem;word-break:break-all}
.muted,.empty{color:#778}
.pager{margin:.5rem 0}
.status-suspended,.state-revoked,.state-expired,.status-failed{color:#c2352b}
`;

export const CSS_HASH = createHash('sha256').update(CSS).digest('hex').slice(0, 12);
export const CSS_FILE = `style-${CSS_HASH}.css`;
