// The administrators' page (/admin): revenue, usage, users, tiers, adjustments and refunds, from the admin API.
export function AdminApp() {
  return (
    <main>
      <h1>MindBot administration</h1>
    </main>
  );
}
