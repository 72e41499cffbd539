// What a renter's web page does, with a stock @solana/web3.js 1.x and fetch:
// read /api/pricing, pay the treasury the price with the rental's terms in a Memo
// instruction (`si64:rent:{tier}:{duration_seconds}`, docs/api.md "Binding a payment": the
// memo binds the payment to this rental, so a wallet that can only sign transactions,
// not messages, can rent), POST /api/rent with no credentials, read the contract back.
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

const [api, rpcUrl, tier = "ORIN", hours = "0.25"] = process.argv.slice(2);
const MEMO_PROGRAM_ID = new PublicKey("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");

async function json(path, init) {
  const res = await fetch(api + path, init);
  return { status: res.status, body: await res.json() };
}

async function main() {
  const pricing = (await json("/api/pricing")).body;
  const perHour = BigInt(pricing.tiers.find((t) => t.tier === tier).lamports_per_hour);
  // price = ceil(lamports_per_hour × seconds / 3600), seconds = round_half_up(hours × 3600): integers only
  const [whole, frac = ""] = hours.split(".");
  const scaled = BigInt(whole + frac) * 3600n;             // hours × 3600 × 10^len(frac)
  const unit = 10n ** BigInt(frac.length);
  const seconds = (2n * scaled + unit) / (2n * unit);      // round half up
  const price = (perHour * seconds + 3599n) / 3600n;

  const connection = new Connection(rpcUrl, "confirmed");
  const renter = Keypair.generate();
  const air = await connection.requestAirdrop(renter.publicKey, LAMPORTS_PER_SOL);
  await connection.confirmTransaction({ signature: air, ...(await connection.getLatestBlockhash()) });
  const tx = new Transaction().add(
    SystemProgram.transfer({
      fromPubkey: renter.publicKey,
      toPubkey: new PublicKey(pricing.treasury),
      lamports: Number(price),
    }),
    new TransactionInstruction({
      programId: MEMO_PROGRAM_ID,
      keys: [{ pubkey: renter.publicKey, isSigner: true, isWritable: false }],
      data: Buffer.from(`si64:rent:${tier}:${seconds}`, "utf8"),
    }),
  );
  const signature = await sendAndConfirmTransaction(connection, tx, [renter], { commitment: "confirmed" });

  const body = JSON.stringify({
    wallet: renter.publicKey.toBase58(), tier, duration_hours: Number(hours), tx_signature: signature,
  });
  const headers = { "Content-Type": "application/json" };
  const rent = await json("/api/rent", { method: "POST", headers, body });
  const replay = await json("/api/rent", { method: "POST", headers, body });
  // the same payment claimed with other terms (what someone watching the chain would try): refused
  const other = await json("/api/rent", { method: "POST", headers, body: JSON.stringify({
    wallet: renter.publicKey.toBase58(), tier: "M2", duration_hours: 1, tx_signature: signature,
  }) });
  const contract = rent.status === 201 ? await json(`/api/contracts/${rent.body.contract_id}`) : null;
  console.log(JSON.stringify({
    wallet: renter.publicKey.toBase58(), signature, price: price.toString(), seconds: seconds.toString(),
    rent, replay, other, contract,
  }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
