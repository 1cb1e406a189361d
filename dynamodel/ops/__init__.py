"""Operations: the flows behind items, queries, batches, transactions, unique guards.

Each module builds flows over a model spec; the Model facade (dynamodel.model) runs them.
"""
