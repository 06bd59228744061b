"""Usage into money: the price table, each call's and tenant's cost, Stripe meter events,
webhooks and the suspension they can bring."""
