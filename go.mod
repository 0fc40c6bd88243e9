module github.com/payloom/payloom

go 1.26.8
