"""Pre-annotation and what to label next: a trained export run over a dataset version's assets
(a Picsellia processing) or a local folder; its predictions written as annotations, each
unlabelled image scored by what the model would learn from it (docs/preannotate.md)."""
