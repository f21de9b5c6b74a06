"""Write requests: the domain shared by producers, moderation and the writer."""
