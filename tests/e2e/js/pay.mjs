// Pays like a renter's web page would, with a stock @solana/web3.js 1.x, against the RPC URL
// given as argv[2]. Prints one JSON line that tests/e2e/test_local_chain.py checks.
import {
  Connection,
  Keypair,
  LAMPORTS_PER_SOL,
  PublicKey,
  SendTransactionError,
  SystemProgram,
  Transaction,
  TransactionInstruction,
  sendAndConfirmTransaction,
} from "@solana/web3.js";

const MEMO_PROGRAM_ID = new PublicKey("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");
const rpcUrl = process.argv[2] ?? "http://127.0.0.1:8899";

async function main() {
  // no commitment given: the server default (finalized), like most dapps
  const connection = new Connection(rpcUrl);
  const payer = Keypair.generate();
  const treasury = Keypair.generate().publicKey;
  const lamports = 15_000_000;
  const memo = "CTR-web3js-0001";

  const airdropSig = await connection.requestAirdrop(payer.publicKey, 2 * LAMPORTS_PER_SOL);
  const latest = await connection.getLatestBlockhash();
  const airdrop = await connection.confirmTransaction({ signature: airdropSig, ...latest });

  const payerBefore = await connection.getBalance(payer.publicKey);
  const treasuryBefore = await connection.getBalance(treasury);

  const tx = new Transaction().add(
    SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: treasury, lamports }),
    new TransactionInstruction({
      programId: MEMO_PROGRAM_ID,
      keys: [{ pubkey: payer.publicKey, isSigner: true, isWritable: true }],
      data: Buffer.from(memo, "utf8"),
    }),
  );
  const signature = await sendAndConfirmTransaction(connection, tx, [payer]);

  const payerAfter = await connection.getBalance(payer.publicKey);
  const treasuryAfter = await connection.getBalance(treasury);
  const got = await connection.getTransaction(signature, { maxSupportedTransactionVersion: 0 });
  const parsed = await connection.getParsedTransaction(signature, { maxSupportedTransactionVersion: 0 });
  const { value: statuses } = await connection.getSignatureStatuses([signature]);

  // a failing payment is refused by preflight with the simulation logs
  let failure = null;
  try {
    const tooMuch = new Transaction().add(
      SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: treasury, lamports: 10 * LAMPORTS_PER_SOL }),
    );
    await sendAndConfirmTransaction(connection, tooMuch, [payer]);
  } catch (err) {
    failure = {
      name: err?.constructor?.name,
      isSendTransactionError: err instanceof SendTransactionError,
      message: String(err?.message),
      logs: err?.logs ?? [],
    };
  }

  const ixs = parsed.transaction.message.instructions;
  console.log(
    JSON.stringify({
      payer: payer.publicKey.toBase58(),
      treasury: treasury.toBase58(),
      lamports,
      memo,
      airdropErr: airdrop.value.err,
      payerBefore,
      treasuryBefore,
      payerAfter,
      treasuryAfter,
      signature,
      tx: {
        slot: got.slot,
        blockTime: got.blockTime,
        version: got.version,
        err: got.meta.err,
        fee: got.meta.fee,
        preBalances: got.meta.preBalances,
        postBalances: got.meta.postBalances,
        logMessages: got.meta.logMessages,
      },
      parsedTransfer: ixs[0].parsed?.info ?? null,
      parsedMemo: ixs[1].parsed ?? null,
      status: { err: statuses[0]?.err ?? null, confirmationStatus: statuses[0]?.confirmationStatus },
      failure,
    }),
  );
}

main()
  .then(() => process.exit(0)) // the WebSocket keeps node alive otherwise
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
