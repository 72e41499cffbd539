// A stock Solana Pay wallet flow with @solana/web3.js 1.x and fetch, by hand the way
// @solana/pay's createTransfer builds it: ask the API for a quote, read ONLY its
// `solana_pay_url` (a transfer request: solana:{recipient}?amount=&reference=&memo=…),
// pay it (a Memo instruction with no accounts, then the system transfer carrying the
// reference as a read-only, non-signer account), and make no second request: the backend
// finds the payment by its reference and opens the contract. Then poll the quote (a read).
// argv: API URL, RPC URL, tier, duration_hours. Prints one JSON line.
import {
  Connection,
  Keypair,
  LAMPORTS_PER_SOL,
  PublicKey,
  SystemProgram,
  Transaction,
  TransactionInstruction,
  sendAndConfirmTransaction,
} from "@solana/web3.js";

const [api, rpcUrl, tier = "M2", hours = "0.25"] = process.argv.slice(2);
const MEMO_PROGRAM_ID = new PublicKey("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");

async function json(path, init) {
  const res = await fetch(api + path, init);
  return { status: res.status, body: await res.json() };
}

// Solana Pay's `amount` is SOL as a plain decimal with at most 9 places: lamports without floats
function lamportsOf(amount) {
  if (!/^\d+(\.\d{1,9})?$/.test(amount)) throw new Error(`not a Solana Pay amount: ${amount}`);
  const [whole, frac = ""] = amount.split(".");
  return BigInt(whole) * 1_000_000_000n + BigInt(frac.padEnd(9, "0"));
}

async function main() {
  const headers = { "Content-Type": "application/json" };
  const quote = await json("/api/quotes", {
    method: "POST", headers, body: JSON.stringify({ tier, duration_hours: Number(hours) }),
  });
  if (quote.status !== 201) throw new Error(`quote: ${JSON.stringify(quote)}`);

  // the wallet's side: everything from the URL, nothing else from the API
  const url = new URL(quote.body.solana_pay_url);
  if (url.protocol !== "solana:") throw new Error(`not a Solana Pay URL: ${url}`);
  const recipient = new PublicKey(url.pathname);
  const lamports = lamportsOf(url.searchParams.get("amount"));
  const references = url.searchParams.getAll("reference").map((r) => new PublicKey(r));
  const memo = url.searchParams.get("memo");

  const connection = new Connection(rpcUrl, "confirmed");
  const payer = Keypair.generate();
  const air = await connection.requestAirdrop(payer.publicKey, LAMPORTS_PER_SOL);
  await connection.confirmTransaction({ signature: air, ...(await connection.getLatestBlockhash()) });

  const transfer = SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: recipient, lamports: Number(lamports) });
  for (const pubkey of references) transfer.keys.push({ pubkey, isWritable: false, isSigner: false });
  const tx = new Transaction();
  if (memo !== null) {
    tx.add(new TransactionInstruction({ programId: MEMO_PROGRAM_ID, keys: [], data: Buffer.from(memo, "utf8") }));
  }
  tx.add(transfer);
  const signature = await sendAndConfirmTransaction(connection, tx, [payer], { commitment: "confirmed" });
  const paidAt = Date.now();

  let status = null;
  for (let i = 0; i < 100; i++) {  // at most ~20 s
    status = await json(`/api/quotes/${quote.body.quote_id}`);
    if (status.body.status !== "OPEN") break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const contract = status.body.contract_id ? await json(`/api/contracts/${status.body.contract_id}`) : null;
  console.log(JSON.stringify({
    quote: quote.body, wallet: payer.publicKey.toBase58(), signature, lamports: lamports.toString(),
    status, contract, found_after_ms: Date.now() - paidAt,
  }));
}

main().catch((err) => { console.error(err); process.exit(1); });
